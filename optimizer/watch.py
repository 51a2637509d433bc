"""``optimize report DIR --watch [SECONDS]``: a live view of a running campaign.

The journal is polled (size and modification time) every SECONDS; whenever it grew, the report is
re-written, and its HTML carries ``<meta http-equiv="refresh">`` so an open browser tab follows it.
Only the campaign directory's report folder is written; no server, no network.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

#: Default seconds between polls of the journal (and the page's refresh period).
DEFAULT_WATCH_S = 10.0
_CHARSET = '<meta charset="utf-8">'


def journal_state(journal: Path) -> tuple[int, int] | None:
    """(size, mtime in ns) of the journal, ``None`` while it does not exist."""
    try:
        st = journal.stat()
    except FileNotFoundError:
        return None
    return st.st_size, st.st_mtime_ns


def set_refresh(html_path: Path, seconds: float | None) -> None:
    """Add (``seconds``) or remove (``None``) the page's auto-refresh, atomically (a refreshing browser never
    reads half a page)."""
    text = html_path.read_text(encoding="utf-8")
    start = text.find('<meta http-equiv="refresh"')
    if start >= 0:
        text = text[:start] + text[text.index(">", start) + 1:]
    if seconds is not None:
        text = text.replace(_CHARSET, f'{_CHARSET}<meta http-equiv="refresh" content="{max(1, round(seconds))}">', 1)
    tmp = html_path.with_suffix(".html.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(html_path)


def watch(journal: Path, html_path: Path, render: Callable[[], None], every: float = DEFAULT_WATCH_S,
          max_updates: int | None = None, say: Callable[[str], None] = print,
          sleep: Callable[[float], None] = time.sleep) -> int:
    """Re-render whenever ``journal`` changed, polling every ``every`` seconds, until Ctrl-C (or, for tests,
    ``max_updates`` renders). The last page is left without its refresh. Returns the number of renders."""
    seen: tuple[int, int] | None = None
    updates = 0
    try:
        while max_updates is None or updates < max_updates:
            now = journal_state(journal)
            if now != seen:
                seen = now
                render()
                set_refresh(html_path, every)
                updates += 1
                say(f"{time.strftime('%H:%M:%S')} report updated ({html_path}); watching {journal.name} "
                    f"every {every:g} s, Ctrl-C stops")
                if max_updates is not None and updates >= max_updates:
                    break
            sleep(every)
    except KeyboardInterrupt:
        say("stopped watching")
    if html_path.exists():
        set_refresh(html_path, None)
    return updates
