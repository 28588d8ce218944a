"""``tpo``: the command line (``run``, ``eval``, ``report``, ``serve``)."""

from __future__ import annotations

import typer

from langgraph_tpo.cli.evaluate import eval_command
from langgraph_tpo.cli.report import report_command
from langgraph_tpo.cli.run import read_prompt, run
from langgraph_tpo.cli.serve import serve

app = typer.Typer(
    help="Test-Time Preference Optimization (TPO) on LangGraph.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
RUN_HELP = (
    "Optimize one response: sample N, score, then up to D rounds of critique and rewrite; "
    "print the best response, its score and a table per iteration.\n\n"
    "Progress (running node, iteration k of D, best score, elapsed time) goes to stderr. "
    "review_gradient has no flag: it needs an interactive resume (use the Python API or "
    "LangGraph Studio)."
)
EVAL_HELP = (
    "Run TPO (or --compare several methods) over a dataset, appending one JSON line per "
    "finished prompt to --out.\n\n"
    "Resumable: rerun the same command after a crash, kill or Ctrl-C and only the missing "
    "prompts run. SIGINT/SIGTERM stop cleanly (exit 130/143) after writing every finished "
    "prompt. review_gradient has no flag: it needs an interactive resume."
)
REPORT_HELP = (
    "Plot the reward curve (mean best-so-far score per iteration, one line per method) into "
    "DIR/reward_curve.png and summarize final score, gain and win rate over the first "
    "iteration, tokens and wall time per prompt into DIR/summary.md."
)
SERVE_HELP = (
    "Serve TPO behind the OpenAI Chat Completions API: POST /v1/chat/completions (streaming "
    "too) and GET /v1/models, on uvicorn. Point any OpenAI client's base_url at "
    "http://HOST:PORT/v1. The TPO flags set the server's defaults; each request's "
    "temperature, top_p, max_tokens, seed and `tpo` object override them. With "
    "TPO_SERVER_API_KEY set, requests need `Authorization: Bearer <key>`."
)
app.command("run", help=RUN_HELP)(run)
app.command("eval", help=EVAL_HELP)(eval_command)
app.command("report", help=REPORT_HELP)(report_command)
app.command("serve", help=SERVE_HELP)(serve)

__all__ = ["app", "read_prompt"]


@app.callback()
def main() -> None:
    """Test-Time Preference Optimization (TPO) on LangGraph."""
