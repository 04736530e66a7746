"""The reconcile rule: adopt only with evidence, submit again only when nothing was made."""

from __future__ import annotations

import pytest

from core.reconcile import Verdict, decide


@pytest.mark.parametrize(
    ("orphans", "waiting", "options", "verdict", "task"),
    [
        # A notification to the job's own webhook URL named its task: that is proof.
        (["t1", "t2"], ["j", "k"], {"evidence": "t2"}, Verdict.ADOPT, "t2"),
        # Nothing unowned in a list read to its end: the create made nothing.
        ([], ["j"], {}, Verdict.SUBMIT_AGAIN, None),
        # ...but a list cut short proves nothing: refund rather than maybe pay twice.
        ([], ["j"], {"complete": False}, Verdict.FAIL, None),
        # One unowned task and one job waiting: someone else's, unless the key is ours alone.
        (["t1"], ["j"], {}, Verdict.FAIL, None),
        (["t1"], ["j"], {"key_dedicated": True}, Verdict.ADOPT, "t1"),
        (["t1"], ["j"], {"key_dedicated": True, "complete": False}, Verdict.FAIL, None),
        (["t1"], ["j", "k"], {"key_dedicated": True}, Verdict.FAIL, None),
        (["t1", "t2"], ["j"], {"key_dedicated": True}, Verdict.FAIL, None),
        # With webhooks, a notification may still come and name it: wait, then give up.
        (["t1"], ["j"], {"webhooks": True, "waited": 60.0}, Verdict.WAIT, None),
        (["t1"], ["j"], {"webhooks": True, "waited": 700.0}, Verdict.FAIL, None),
    ],
)
def test_the_rule(
    orphans: list[str],
    waiting: list[str],
    options: dict[str, object],
    verdict: Verdict,
    task: str | None,
) -> None:
    arguments: dict[str, object] = {
        "evidence": None,
        "complete": True,
        "key_dedicated": False,
        "webhooks": False,
        "waited": 40.0,
        "evidence_wait": 600.0,
        **options,
    }
    decision = decide("j", orphans, waiting, **arguments)  # type: ignore[arg-type]
    assert decision.verdict is verdict
    assert decision.task_id == task
    assert decision.why
