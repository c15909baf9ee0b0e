"""Map reading a bug report: frames, code names, messages, and the file ranking they give."""

from __future__ import annotations

import textwrap
from pathlib import Path

from pytest_orchestrator.phases.map.phase import map_repository
from pytest_orchestrator.phases.map.report import (
    Evidence,
    Frame,
    file_scores,
    is_auxiliary,
    parse,
    widen,
)
from pytest_orchestrator.phases.map.terms import extract

TRACEBACK_REPORT = """\
Crash when exporting an item whose date is out of range

```
Traceback (most recent call last):
  File "/venv/lib/python3.11/site-packages/pydispatch/robustapply.py", line 55, in robustApply
    return receiver(*arguments, **named)
  File "/venv/lib/python3.11/site-packages/shop/export/feed.py", line 224, in item_scraped
    slot.exporter.export_item(item)
  File "/venv/lib/python3.11/site-packages/shop/export/writers.py", line 31, in export_item
    data = self.encoder.encode(itemdict)
ValueError: year 1234 is out of range for the encoder
```
"""


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def test_frames_are_read_in_every_common_shape() -> None:
    """CPython, pytest, IPython frames and forge links all become frames, in order."""
    text = textwrap.dedent(
        """\
        Title
        File "C:\\venv\\Lib\\site-packages\\pkg\\core.py", line 12, in run
        src/pkg/util.py:40: in helper
        /usr/lib/python3/dist-packages/pkg/web.py in __init__(self, body)
        see https://github.com/o/r/blob/abc123/src/pkg/types.py#L896
        """
    )
    frames = parse(text).frames
    assert frames == (
        Frame("C:/venv/Lib/site-packages/pkg/core.py", 12, "run"),
        Frame("src/pkg/util.py", 40, "helper"),
        Frame("/usr/lib/python3/dist-packages/pkg/web.py", 0, "__init__"),
        Frame("src/pkg/types.py", 896, ""),
    )


def test_code_blocks_give_the_api_used_not_the_reporters_own_names() -> None:
    """Names a snippet calls or imports are the project's API; names it defines are not."""
    report = parse(
        textwrap.dedent(
            """\
            Nested group completion broken

            ```python
            from shop.routing import Rule, Map

            class MyHandler(Base):
                def handle(self, request):
                    routes = Map([Rule("/x")])
                    return routes.bind_to("host").match_path(request)
            ```

                >>> resolve_order(cart, strict=True)
            """
        )
    )
    assert {"Rule", "Map", "Base", "bind_to", "match_path", "resolve_order", "strict"} <= set(
        report.api_names
    )
    assert {"MyHandler", "handle", "routes", "request"} <= set(report.local_names)
    assert not {"MyHandler", "handle", "routes"} & set(report.api_names)
    assert report.modules == ("shop.routing",)
    assert report.is_report


def test_error_messages_are_cut_to_searchable_fragments() -> None:
    """The reporter's values (quoted, numbers) are cut out; the project's wording stays."""
    report = parse(
        TRACEBACK_REPORT + "\nerror: cannot format x.py: Apparently, old parens do NOT exist?!\n"
    )
    assert "is out of range for the encoder" in report.messages
    assert "Apparently, old parens do NOT exist" in report.messages
    assert not any("1234" in m for m in report.messages)


def test_only_a_report_about_tests_keeps_test_files_up() -> None:
    assert parse("Add tests for the exporter\n\nwe have none").about_tests
    assert parse("Flaky test_export on CI\n\nit fails one run in ten").about_tests
    assert not parse("Test failures with Python 3.13: dataclass repr\n\nbody").about_tests
    assert not parse("rename calculate to compute").is_report
    assert not parse("Fix the sizing of wheels\nUse the Kelly fraction\nwhen sizing").is_report
    assert parse("Sizing is wrong\n\nThe Kelly fraction is ignored").is_report


def test_widen_searches_frames_and_messages_but_not_the_snippets_names() -> None:
    report = parse(TRACEBACK_REPORT)
    terms = widen(extract(TRACEBACK_REPORT), report)
    assert "/venv/lib/python3.11/site-packages/shop/export/writers.py" in terms.paths
    assert ("/venv/lib/python3.11/site-packages/shop/export/writers.py", 31) in terms.trace
    assert "export_item" in terms.identifiers
    assert "is out of range for the encoder" in terms.phrases


def test_the_innermost_frame_in_the_repository_scores_highest() -> None:
    """Of several frames pointing into the repository, the last one (where it raised) leads;
    frames outside the repository (resolving to no file) do not count."""
    report = parse(TRACEBACK_REPORT)
    ev = Evidence(
        bm25={"shop/export/feed.py": 1.0, "shop/export/writers.py": 1.0},
        path={},
        definitions={},
        uses={},
        phrases={},
        frame_files=[set(), {"shop/export/feed.py"}, {"shop/export/writers.py"}],
        named=set(),
    )
    scores = file_scores(report, extract(TRACEBACK_REPORT), 10, ev)
    assert scores["shop/export/writers.py"]["trace"] == 1.0
    assert scores["shop/export/feed.py"]["trace"] == 0.5
    assert scores["shop/export/writers.py"]["total"] > scores["shop/export/feed.py"]["total"]


def test_test_example_and_init_files_rank_down_with_equal_evidence() -> None:
    report = parse("Export breaks\n\nthe export of dates breaks with the encoder")
    same = {"shop/export.py", "tests/test_export.py", "examples/export.py", "shop/__init__.py"}
    ev = Evidence(
        bm25=dict.fromkeys(same, 1.0),
        path={},
        definitions={},
        uses={},
        phrases={},
        frame_files=[],
        named=set(),
    )
    total = {p: c["total"] for p, c in file_scores(report, extract("x"), 10, ev).items()}
    assert total["shop/export.py"] > total["shop/__init__.py"] > total["tests/test_export.py"]
    assert total["shop/export.py"] > total["examples/export.py"] > total["tests/test_export.py"]
    assert is_auxiliary("docs/conf.py")
    assert not is_auxiliary("shop/docs.py")


def test_files_outside_any_package_are_auxiliary_but_root_files_are_not() -> None:
    packages = frozenset({"src/shop", "src/shop/export"})
    assert is_auxiliary("scripts/release.py", packages)
    assert is_auxiliary("gallery/build.py", packages)
    assert not is_auxiliary("src/shop/export/feed.py", packages)
    assert not is_auxiliary("install-shop.py", packages)
    assert not is_auxiliary("gallery/build.py")  # packages unknown: by name only


def test_rarer_definitions_count_more() -> None:
    """A file defining a name only it defines outscores one defining a name many define."""
    report = parse("Bug\n\n```\nrender_feed(items)\nsetup()\n```")
    ev = Evidence(
        bm25={},
        path={},
        definitions={"render_feed": {"a.py"}, "setup": {"b.py", "c.py", "d.py"}},
        uses={},
        phrases={},
        frame_files=[],
        named=set(),
    )
    scores = file_scores(report, extract("render_feed setup"), 10, ev)
    assert scores["a.py"]["define"] == 1.0
    assert scores["b.py"]["define"] < 0.5


def test_map_puts_the_file_a_traceback_points_to_first(tmp_path: Path) -> None:
    """On a small project, a pasted traceback beats word overlap: the test file and the
    caller mention the report's words more often, the raising file comes first."""
    root = write(
        tmp_path / "proj",
        {
            "shop/__init__.py": "from shop.export.writers import JsonWriter\n",
            "shop/export/__init__.py": "",
            "shop/export/feed.py": """\
                from shop.export.writers import JsonWriter

                def item_scraped(item, slot):
                    # export the item: the item exporter exports items as they are scraped
                    slot.exporter.export_item(item)
                """,
            "shop/export/writers.py": """\
                import json

                class JsonWriter:
                    def __init__(self):
                        self.encoder = json.JSONEncoder()

                    def export_item(self, itemdict):
                        data = self.encoder.encode(itemdict)
                        return data
                """,
            "tests/test_export.py": """\
                from shop.export.writers import JsonWriter

                def test_export_item_out_of_range_date_encoder():
                    # export item, encoder, date out of range: the exporter must not crash
                    JsonWriter().export_item({"date": "out of range"})
                """,
        },
    )
    result = map_repository(root, TRACEBACK_REPORT)
    assert result.files[0] == "shop/export/writers.py"
    assert result.files.index("tests/test_export.py") > result.files.index("shop/export/feed.py")
    top = result.slices[0]
    assert top.slice.path == "shop/export/writers.py"
    assert top.components["report"] == 1.0
    assert result.stats["report_frames_in_repo"] == 2


def test_a_sentence_is_ranked_as_before(tmp_path: Path) -> None:
    """A one-line command is not a report: no report component, the sentence weights."""
    root = write(tmp_path / "p", {"calc.py": "def add(a, b):\n    return a + b\n"})
    result = map_repository(root, "rename add to plus")
    assert result.slices[0].components["report"] == 0.0
    assert "report_frames" not in result.stats


def evidence(**given: object) -> Evidence:
    """An `Evidence` with nothing but ``given``."""
    empty: dict[str, object] = {
        "bm25": {},
        "path": {},
        "definitions": {},
        "uses": {},
        "phrases": {},
        "frame_files": [],
        "named": set(),
    }
    return Evidence(**{**empty, **given})  # type: ignore[arg-type]


def test_names_weigh_by_where_the_report_shows_them() -> None:
    """The title's names most; a called name more than one read as an attribute, more than
    a keyword; the snippet's own names not at all."""
    report = parse(
        textwrap.dedent(
            """            Nested() ignores its default

            ```python
            class Mine(Schema):
                inner = fields.Nested(Other, unknown=RAISE)
            ```
            """
        )
    )
    w = report.name_weights
    assert w["Nested"] > w["Schema"] > w["unknown"]
    assert w["Nested"] > w["fields"] > w["unknown"]
    assert not {"Mine", "inner"} & set(w)


def test_words_of_urls_and_issue_templates_barely_count() -> None:
    report = parse(
        textwrap.dedent(
            """            Encoder drops the timezone

            **Describe the bug**
            The encoder loses it, see https://github.com/octo/shop/issues/12

            **Environment**
            - OS: Linux
            - Python version: 3.12
            """
        )
    )
    w = report.word_weights
    assert w["timezone"] > w["loses"] > w.get("describe", 0.0)
    assert not {"github", "octo", "issues", "linux", "environment"} & set(w)


def test_a_name_every_file_uses_says_less_than_a_rare_one() -> None:
    """Two files each define one name the report calls; the one whose name few files use
    leads (``Schema`` is everywhere, ``Nested`` is not)."""
    report = parse("Nested breaks\n\n```\nSchema(x)\nNested(x)\n```")
    uses = {f"m{i}.py": {"Schema": 1} for i in range(8)}
    uses["schema.py"] = {"Schema": 3}
    uses["fields.py"] = {"Nested": 2, "Schema": 1}
    ev = evidence(definitions={"Schema": {"schema.py"}, "Nested": {"fields.py"}}, uses=uses)
    scores = file_scores(report, extract("Nested Schema"), 20, ev)
    assert scores["fields.py"]["define"] == 1.0
    assert scores["schema.py"]["define"] < 0.5
    assert scores["fields.py"]["total"] > scores["schema.py"]["total"]


def test_a_message_found_in_one_file_says_more_than_one_found_everywhere() -> None:
    report = parse("Crash\n\nValueError: the encoder cannot take this date")
    phrases = {f"m{i}.py": {"common words here": 1} for i in range(6)}
    phrases["enc.py"] = {"the encoder cannot take this date": 1}
    phrases["m0.py"] = {"common words here": 1}
    scores = file_scores(report, extract("x"), 20, evidence(phrases=phrases))
    assert scores["enc.py"]["message"] == 1.0
    assert scores["m1.py"]["message"] < 0.5


def test_report_words_are_scored_with_their_weights() -> None:
    """With the word counts and sizes, BM25 is the report's own: a file matching the
    title's word beats one matching a body word as often."""
    report = parse("Timezone lost\n\nthe encoder runs")
    ev = evidence(
        word_counts={"a.py": {"timezone": 2}, "b.py": {"encoder": 2}},
        sizes={"a.py": 100.0, "b.py": 100.0},
    )
    scores = file_scores(report, extract("Timezone lost\n\nthe encoder runs"), 20, ev)
    assert scores["a.py"]["bm25"] == 1.0
    assert scores["b.py"]["bm25"] < 1.0


def test_with_equal_evidence_the_longer_module_leads() -> None:
    """A small prior for long modules: they hold more of the code fixes touch."""
    report = parse("Timezone lost\n\nthe encoder runs")
    ev = evidence(
        path={"big.py": 1.0, "small.py": 1.0},
        sizes={"big.py": 40_000.0, "small.py": 4_000.0},
    )
    scores = file_scores(report, extract("Timezone lost"), 20, ev)
    assert scores["big.py"]["size"] == 1.0
    assert scores["small.py"]["size"] < 1.0
    assert scores["big.py"]["total"] > scores["small.py"]["total"]
