"""`ops status` for a person: the same facts as `--json`, as short tables."""

from __future__ import annotations

import time
from typing import Any


def _ago(ms: int) -> str:
    seconds = max(time.time() - ms / 1000, 0)
    return f"{seconds:.0f}s ago" if seconds < 120 else f"{seconds / 60:.0f}min ago"


def format_status(report: dict[str, Any]) -> str:
    shadow = report.get("challenger")
    lines = [
        f"@champion: version {report['champion']}",
        f"@challenger: {f'version {shadow} (scored in the shadow)' if shadow else 'none'}",
        "",
        "alias history (newest first):",
    ]
    for entry in reversed(report["history"][-10:]):
        lines.append(
            f"  v{entry.get('version')}  {_ago(int(entry.get('at_ms', 0)))}  "
            f"by {entry.get('by') or '?'}  {entry.get('reason', '')}"
        )
    lines += ["", "versions (newest first):"]
    for v in report["versions"]:
        auc = v["holdout"].get("auc")
        auc_text = f"{auc:.4f}" if auc is not None else "  -   "
        mark = "*" if v["version"] == report["champion"] else "~" if v["version"] == shadow else " "
        lines.append(
            f" {mark}v{v['version']:<4} holdout AUC {auc_text}  "
            f"{'promoted' if v['promoted'] else 'kept    '}  {v['gate'][:90]}"
        )
    lines += ["", "predictors:"]
    if not report["predictors"]:
        lines.append("  (none heard from)")
    for p in report["predictors"]:
        lines.append(
            f"  {p['instance']:<24} v{p['version']:<4} partitions {p['partitions']}  "
            f"lag {p['lag']}  last seen {_ago(p['last_seen_ms'])}"
        )
    return "\n".join(lines)
