"""How sources mark a revert: git's message line, revert titles, GitHub branches, GitLab text.

Pure text parsing with no pandas, so collectors, webhooks and storage can use it cheaply; the
rule that turns reverts into failed deployments lives in `reverts.py`.
"""

from __future__ import annotations

import re

_REVERTS_COMMIT = re.compile(r"This reverts commit ([0-9a-f]{64}|[0-9a-f]{40})\b")
_REVERT_TITLE = re.compile(r'^Revert "(.+)"\s*(?:\(#?!?\d+\))?$', re.DOTALL)
_GITHUB_REVERT_BRANCH = re.compile(r"^revert-(\d+)-")
_GITLAB_REVERTS_MR = re.compile(r"This reverts merge request !(\d+)")


def reverted_sha(message: str | None) -> str | None:
    """The commit a commit message says it reverts.

    >>> reverted_sha('Revert "Add cache"\\n\\nThis reverts commit ' + "a" * 40 + ".")
    'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'
    """
    match = _REVERTS_COMMIT.search(message or "")
    return match.group(1) if match else None


def reverted_title(title: str | None) -> str | None:
    """The title a `Revert "<title>"` pull/merge request title names (GitHub's squash suffix
    ` (#12)` ignored).

    >>> reverted_title('Revert "Add cache" (#12)')
    'Add cache'
    """
    match = _REVERT_TITLE.match((title or "").strip())
    return match.group(1) if match else None


def reverted_change_ref(
    head_branch: str | None = None, description: str | None = None
) -> str | None:
    """The number of the change a pull/merge request reverts, from GitHub's `revert-<n>-…`
    head branch or GitLab's "This reverts merge request !n" description.

    >>> reverted_change_ref("revert-42-feature-x")
    '42'
    >>> reverted_change_ref(None, "This reverts merge request !7")
    '7'
    """
    match = _GITHUB_REVERT_BRANCH.match(head_branch or "")
    if match:
        return match.group(1)
    match = _GITLAB_REVERTS_MR.search(description or "")
    return match.group(1) if match else None
