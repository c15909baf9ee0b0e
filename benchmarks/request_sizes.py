"""Request sizes of the anthropic planner on the bundled example, per step, in tokens.

For each command, Map and Logic run on a fresh copy of ``examples/wheel`` exactly as in a
run; the anthropic planner then plans, writes each edit and replans after a synthetic failed
attempt, through the real SDK against the local stand-in (no network, no key). Each request
is measured as sent, three ways: the local estimate (`llm.request_tokens`), the stand-in's
``count_tokens`` answer, and an offline Claude tokenizer (``pip install anthropic-tokenizer``;
its BPE over every text of the request, plus the tool-use system prompt the API adds).

It runs in three modes, to show what enforcing the budget with each measure gives:

``before``
    the estimate as it was (no tool-use system prompt), no counting;
``estimate``
    the calibrated estimate (tool-use system prompt included), counting unavailable;
``counted``
    ``count_tokens`` enforces every step.

    python benchmarks/request_sizes.py [--budget 4000]

Prints a markdown table per mode and the share of steps over the budget by the offline
tokenizer and by the stand-in's count.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from pytest_orchestrator.phases.logic.phase import prune
from pytest_orchestrator.phases.map.phase import map_repository
from pytest_orchestrator.phases.plan import llm
from pytest_orchestrator.phases.plan.llm import LlmConfig
from pytest_orchestrator.phases.plan.planners import Failure, PlanContext
from pytest_orchestrator.phases.plan.planners.anthropic import AnthropicPlanner
from pytest_orchestrator.plan import OPS, Budgets, Plan, Step
from pytest_orchestrator.testing.fake_anthropic import (
    FakeAnthropic,
    count_tokens,
    edit_reply,
    plan_reply,
    request_texts,
)
from pytest_orchestrator.tokens import TokenLedger

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "wheel"
COMMANDS = [
    "Rename calculate_position_size to position_size, test at scale, post PR",
    "Refactor sizing: extract the volatility scaling into its own function",
    "Make fractional_kelly reject a cap above 1 with a clear error",
    "Add a max_contracts limit to SizingLimits and apply it in calculate_position_size",
]
EVIDENCE = "\n".join(
    [
        "tests: 150 passed, 1 failed in 12.6s",
        "FAILED tests/test_sizing.py::test_volatility_scale_is_clipped[0.05-11]: assert 39 == 11",
        *[
            f"    frame {i}: wheel_sizing/sizing.py:{120 + i} in calculate_position_size"
            for i in range(40)
        ],
        "E   assert 39 == 11",
        "check montecarlo failed: wheel_pnl.mean_contracts: 6.34 -> 6.36",
    ]
)
DIFF = "\n".join(
    ["diff --git a/wheel_sizing/sizing.py b/wheel_sizing/sizing.py", "@@ -82,6 +82,11 @@"]
    + [f"+    line {i} of the previous attempt's change" for i in range(60)]
)


def copy_example(into: Path) -> Path:
    repo = into / "wheel"
    shutil.copytree(
        EXAMPLE, repo, ignore=shutil.ignore_patterns("__pycache__", ".*cache", ".orchestrate")
    )
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "wheel"]):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)
    return repo


def context_for(repo: Path, command: str, budget: int) -> PlanContext:
    mapped = map_repository(repo, command)
    logic = prune(mapped, repo, budget_tokens=budget)
    files = subprocess.run(
        ["git", "ls-files"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.split()
    return PlanContext(
        command=command,
        worktree=repo,
        slices=logic.kept,
        outline=files,
        tests=[f for f in files if re.search(r"(^|/)test_[^/]*\.py$", f)],
        budgets=Budgets(input_tokens_per_step=budget),
        ops=dict(OPS),
        ledger=TokenLedger(),
    )


def responder(context: PlanContext) -> Any:
    """Plans one edit of the best slice; the edit adds a comment above that slice."""
    top = context.slices[0].slice

    def answer(body: dict[str, Any]) -> dict[str, Any]:
        if body["tools"][0]["name"] == "submit_plan":
            return plan_reply(
                [
                    {
                        "id": "change",
                        "pool": "mutate",
                        "op": "edit",
                        "args": {
                            "path": top.path,
                            "symbols": [top.symbol],
                            "instruction": "change it",
                        },
                    },
                    {"id": "tests", "pool": "scan", "op": "run_tests", "needs": ["change"]},
                ]
            )
        lines = (context.worktree / top.path).read_text().splitlines(keepends=True)
        block = "".join(lines[top.start_line - 1 : top.end_line])
        return edit_reply({"search": block, "replace": "# benchmark\n" + block})

    return answer


def shown(body: dict[str, Any]) -> tuple[int, int]:
    text = json.dumps(body["messages"])
    return text.count("### "), text.count("body omitted")


def offline_tokens(body: dict[str, Any]) -> int | None:
    """The offline tokenizer's count of a request (None when it is not installed)."""
    try:
        import anthropic_tokenizer  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None
    texts = [*request_texts(body.get("system")), *request_texts(body.get("tools"))]
    for message in body.get("messages") or []:
        texts += list(request_texts(message.get("content")))
    framing = 4 * len(body.get("messages") or [])
    tools = TOOL_PROMPT if body.get("tools") else 0
    return sum(int(anthropic_tokenizer.count_tokens(t)) for t in texts) + framing + tools


TOOL_PROMPT = llm.TOOL_USE_SYSTEM_TOKENS
"""The tool-use system prompt the API adds (the documented figure, whatever the mode)."""
MODES = {
    "before": {"counting": False, "overhead": 0},
    "estimate": {"counting": False, "overhead": llm.TOOL_USE_SYSTEM_TOKENS},
    "counted": {"counting": True, "overhead": llm.TOOL_USE_SYSTEM_TOKENS},
}


def measure(repo: Path, command: str, budget: int, mode: str) -> list[dict[str, Any]]:
    context = context_for(repo, command, budget)
    rows = []
    settings = MODES[mode]
    llm.TOOL_USE_SYSTEM_TOKENS = settings["overhead"]  # type: ignore[misc]
    try:
        with FakeAnthropic(responder=responder(context), counting=settings["counting"]) as fake:
            import os

            os.environ.update(ANTHROPIC_BASE_URL=fake.url, ANTHROPIC_API_KEY="benchmark")
            planner = AnthropicPlanner(
                LlmConfig(
                    model="claude-sonnet-4-6", mcp_max_tool_calls=0, input_tokens_per_step=budget
                )
            )
            planner.plan(context)
            previous = Plan(
                command=command,
                summary="the previous attempt",
                steps=[Step(id="tests", pool="scan", op="run_tests")],
            )
            planner.replan(context, Failure(attempt=1, evidence=EVIDENCE, diff=DIFF, plan=previous))
    finally:
        llm.TOOL_USE_SYSTEM_TOKENS = MODES["counted"]["overhead"]  # type: ignore[misc]
    calls = context.ledger.calls
    for call, request in zip(calls, fake.requests, strict=True):
        whole_or_sig, signatures = shown(request.body)
        rows.append(
            {
                "command": command,
                "step": call["step"],
                "estimate": call["estimated_input_tokens"],
                "standin": count_tokens(request.body),
                "offline": offline_tokens(request.body),
                "by": call["budget_source"],
                "chars": len(request.raw),
                "slices": whole_or_sig,
                "signatures": signatures,
                "kept": len(context.slices),
            }
        )
    return rows


def share(rows: list[dict[str, Any]], key: str, budget: int) -> str:
    values = [r[key] for r in rows if r[key] is not None]
    if not values:
        return "n/a"
    over = sum(v > budget for v in values)
    return f"{over}/{len(values)} ({100 * over / len(values):.0f} %)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=4000)
    args = parser.parse_args(argv)
    summary = []
    for mode in MODES:
        with tempfile.TemporaryDirectory() as tmp:
            repo = copy_example(Path(tmp))
            rows = [row for c in COMMANDS for row in measure(repo, c, args.budget, mode)]
        print(f"\n### mode `{mode}` (per-step input budget {args.budget})\n")
        print(
            "| command | step | estimate | stand-in count | offline tokenizer | enforced by "
            "| request chars | slices shown (of kept) | signature only |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            offline = "n/a" if r["offline"] is None else r["offline"]
            print(
                f"| {r['command'][:40]} | {r['step']} | {r['estimate']} | {r['standin']} "
                f"| {offline} | {r['by']} | {r['chars']} | {r['slices']} ({r['kept']}) "
                f"| {r['signatures']} |"
            )
        ratio = [r["estimate"] / r["offline"] for r in rows if r["offline"]]
        summary.append(
            f"| {mode} | {share(rows, 'offline', args.budget)} "
            f"| {share(rows, 'standin', args.budget)} "
            + (f"| {min(ratio):.2f} to {max(ratio):.2f} |" if ratio else "| n/a |")
        )
    print(f"\n### steps over {args.budget} input tokens\n")
    print("| mode | by the offline tokenizer | by the stand-in's count | estimate / offline |")
    print("|---|---|---|---|")
    print("\n".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
