"""The secrets figures of the `pii` task (evals.tasks): every set of evals.secrets_eval, by default
and with the policy option `sensitivity.labelled_secrets` on."""

from __future__ import annotations

from evals import secrets_eval
from evals.results import Better, TaskResult
from router.signals.sensitivity.detector import SensitivityDetector

UP, DOWN = Better.HIGHER, Better.LOWER


def add_secrets(result: TaskResult) -> None:
    """The default detector's figures, then the labelled option's."""
    secrets = secrets_eval.run(half="held-out")
    result.add("secrets.providers.recall", secrets["providers"]["recall"], UP)
    result.add("secrets.plaintext_heldout.recall", secrets["plaintext"]["recall"], UP)
    result.add("secrets.lookalikes.flag_rate", secrets["lookalikes"]["flag_rate"], DOWN)
    result.add("secrets.review_lookalikes.flag_rate", secrets["review_lookalikes"]["flag_rate"], DOWN)
    result.add("secrets.kinds_lookalikes.flag_rate", secrets["kinds_lookalikes"]["flag_rate"], DOWN)
    result.add("secrets.kinds_secrets.recall", secrets["kinds_secrets"]["recall"], UP)
    result.add(
        "secrets.pastes_heldout.lookalikes.flag_rate",
        secrets["pastes_heldout"]["lookalikes"]["flag_rate"],
        DOWN,
    )
    result.add("secrets.pastes_heldout.secrets.recall", secrets["pastes_heldout"]["secrets"]["recall"], UP)
    # other authors' sets (secrets_eval.SECOND_AUTHORS): the spent ones regression guards, the
    # unread one held out by author
    for name, _, _ in secrets_eval.SECOND_AUTHORS:
        result.add(f"secrets.{name}.recall", secrets[name]["recall"], UP)
        result.add(f"secrets.{name}_lookalikes.flag_rate", secrets[f"{name}_lookalikes"]["flag_rate"], DOWN)
        for kind, recall in secrets[name]["by_kind"].items():
            result.add(f"secrets.{name}.{kind}.recall", recall, UP)
    # generic credentials (no vendor prefix) named in words, configs, code, commands and logs
    for name, _, _ in secrets_eval.TOKEN_AUTHORS:
        result.add(f"secrets.{name}.recall", secrets[name]["recall"], UP)
        result.add(f"secrets.{name}_lookalikes.flag_rate", secrets[f"{name}_lookalikes"]["flag_rate"], DOWN)
        for kind, recall in secrets[name]["by_kind"].items():
            result.add(f"secrets.{name}.{kind}.recall", recall, UP)
    for kind, recall in secrets["providers"]["by_kind"].items():
        result.add(f"secrets.provider.{kind}.recall", recall, UP)
    _labelled_secrets(result)
    # the same sets filled with passwords people chose (common leaked ones) instead of generated
    for name, part in secrets_eval.authors_recall("leaked").items():
        result.add(f"secrets_leaked.{name}.recall", part["recall"], UP)
    # CredSweeper's test lines, where fetched: reported, never gated (a checkout without them passes)
    for group, part in (secrets["credsweeper"] or {}).items():
        if group != "misses":
            result.add(f"secrets.credsweeper.{group}.recall", part["recall"], UP)


def _labelled_secrets(result: TaskResult) -> None:
    """The same secrets sets with the policy option `sensitivity.labelled_secrets` on: a random value
    that words name as a key, token or secret. Off by default: on the unread sets it was judged by it
    found more and flagged more look-alikes than its rule allowed (README)."""
    on = secrets_eval.run(half="held-out", detector=SensitivityDetector(labelled_secrets=True))
    for name in ("lookalikes", "review_lookalikes", "kinds_lookalikes"):
        result.add(f"secrets_labelled.{name}.flag_rate", on[name]["flag_rate"], DOWN)
    result.add("secrets_labelled.kinds_secrets.recall", on["kinds_secrets"]["recall"], UP)
    pastes = on["pastes_heldout"]
    result.add(
        "secrets_labelled.pastes_heldout.lookalikes.flag_rate", pastes["lookalikes"]["flag_rate"], DOWN
    )
    result.add("secrets_labelled.pastes_heldout.secrets.recall", pastes["secrets"]["recall"], UP)
    for name, _, _ in (*secrets_eval.SECOND_AUTHORS, *secrets_eval.TOKEN_AUTHORS):
        result.add(f"secrets_labelled.{name}.recall", on[name]["recall"], UP)
        result.add(
            f"secrets_labelled.{name}_lookalikes.flag_rate", on[f"{name}_lookalikes"]["flag_rate"], DOWN
        )
