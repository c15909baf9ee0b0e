"""Request sizes of the anthropic planner on the bundled example, per step, in tokens.

For each command, Map and Logic run on a fresh copy of ``examples/wheel`` exactly as in a
run; the anthropic planner then plans, writes each edit and replans after a synthetic failed
attempt, through the real SDK against the local fake API (no network, no key). Every request
is measured as sent: our conservative local estimate (the budget gate), its size in
characters, and how many slices went in whole, as a signature only, or not at all.

    python benchmarks/request_sizes.py [--budget 4000]

Prints a markdown table.
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
from pytest_orchestrator.phases.plan.llm import LlmConfig, request_tokens
from pytest_orchestrator.phases.plan.planners import Failure, PlanContext
from pytest_orchestrator.phases.plan.planners.anthropic import AnthropicPlanner
from pytest_orchestrator.plan import OPS, Budgets, Plan, Step
from pytest_orchestrator.testing.fake_anthropic import FakeAnthropic, edit_reply, plan_reply
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


def measure(repo: Path, command: str, budget: int) -> list[dict[str, Any]]:
    context = context_for(repo, command, budget)
    rows = []
    with FakeAnthropic(responder=responder(context)) as fake:
        import os

        os.environ.update(ANTHROPIC_BASE_URL=fake.url, ANTHROPIC_API_KEY="benchmark")
        planner = AnthropicPlanner(
            LlmConfig(model="benchmark", mcp_max_tool_calls=0, input_tokens_per_step=budget)
        )
        planner.plan(context)
        previous = Plan(
            command=command,
            summary="the previous attempt",
            steps=[Step(id="tests", pool="scan", op="run_tests")],
        )
        planner.replan(context, Failure(attempt=1, evidence=EVIDENCE, diff=DIFF, plan=previous))
        steps = [c["step"] for c in context.ledger.calls]
        for step, request in zip(steps, fake.requests, strict=True):
            whole_or_sig, signatures = shown(request.body)
            rows.append(
                {
                    "command": command,
                    "step": step,
                    "tokens": request_tokens(request.body),
                    "chars": len(request.raw),
                    "slices": whole_or_sig,
                    "signatures": signatures,
                    "kept": len(context.slices),
                }
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=4000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        repo = copy_example(Path(tmp))
        rows = [row for command in COMMANDS for row in measure(repo, command, args.budget)]
    print(f"Per-step input budget: {args.budget} tokens (local conservative estimate)\n")
    print(
        "| command | step | input tokens (est.) | request chars | slices shown "
        "(of kept) | signature only |"
    )
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['command'][:48]} | {r['step']} | {r['tokens']} | {r['chars']} "
            f"| {r['slices']} ({r['kept']}) | {r['signatures']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
