"""``report.html``: a gallery of a run that a person can open from disk.

Thumbnails load lazily from the screenshots' links (relative paths for local storage, so the
output directory can be moved). Large runs show the first :data:`MAX_ROWS` rows, errors first.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

from manifest import read_results
from results import Result

REPORT_NAME = "report.html"
#: Rows shown in the report at most; the manifest always has them all.
MAX_ROWS = 5000

STYLE = """
body{font-family:system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d232a}
header{padding:16px 24px;background:#1d3557;color:#fff}
header h1{margin:0 0 4px;font-size:20px}
.bar{padding:8px 24px;display:flex;gap:12px;align-items:center}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:16px;
  padding:16px 24px}
.card{background:#fff;border-radius:8px;box-shadow:0 1px 3px #0002;overflow:hidden}
.card img{width:100%;height:170px;object-fit:cover;object-position:top;display:block;
  background:#ddd}
.card .meta{padding:8px 10px;font-size:13px;word-break:break-all}
.card.error .meta{border-top:3px solid #e63946}
.card.ok .meta{border-top:3px solid #2a9d8f}
.err{color:#b00020}
.noimg{height:170px;display:flex;align-items:center;justify-content:center;color:#999;background:#eee}
"""

SCRIPT = """
function applyFilter(){
  var status=document.getElementById('status').value;
  var text=document.getElementById('search').value.toLowerCase();
  var shown=0;
  document.querySelectorAll('.card').forEach(function(card){
    var ok=(status==='all'||card.dataset.status===status)&&card.dataset.url.indexOf(text)>=0;
    card.style.display=ok?'':'none'; if(ok){shown++;}
  });
  document.getElementById('shown').textContent=shown;
}
"""


def _image_src(result: Result, out_dir: Path) -> str | None:
    if not result.ok or not result.link:
        return None
    if result.link.startswith("file://"):
        path = Path(unquote(urlsplit(result.link).path))
        try:
            return Path(os.path.relpath(path, out_dir)).as_posix()
        except ValueError:
            return result.link
    return result.link


def _card(result: Result, out_dir: Path) -> str:
    esc = html.escape
    src = _image_src(result, out_dir)
    if src:
        picture = (
            f'<a href="{esc(src)}" target="_blank"><img loading="lazy" src="{esc(src)}" '
            f'alt="screenshot of {esc(result.url)}"></a>'
        )
    else:
        picture = '<div class="noimg">no screenshot</div>'
    details = [f'<a href="{esc(result.url)}">{esc(result.url)}</a>']
    if result.ok:
        size = f"{result.width}×{result.height}, {(result.bytes or 0) / 1024:.0f} KB"
        status = f" · HTTP {result.http_status}" if result.http_status else ""
        details.append(f"<div>{esc(size)}{esc(status)} · {result.duration_ms} ms</div>")
        if result.title:
            details.append(f"<div><b>{esc(result.title)}</b></div>")
    else:
        details.append(f'<div class="err">{esc(result.error or "error")}</div>')
    return (
        f'<div class="card {esc(result.status)}" data-status="{esc(result.status)}" '
        f'data-url="{esc(result.url.lower())}">{picture}<div class="meta">'
        + "".join(details)
        + "</div></div>"
    )


def pick_rows(jsonl_path: Path, limit: int = MAX_ROWS) -> tuple[list[Result], int, int]:
    """Up to ``limit`` rows (errors first, then ``ok`` ones), the total and the ``ok`` count.

    Two streaming passes over the manifest, so memory is bounded by ``limit``.
    """
    errors: list[Result] = []
    total = ok = 0
    for result in read_results(jsonl_path):
        total += 1
        if result.ok:
            ok += 1
        elif len(errors) < limit:
            errors.append(result)
    oks: list[Result] = []
    room = limit - len(errors)
    if room > 0:
        for result in read_results(jsonl_path):
            if result.ok:
                oks.append(result)
                if len(oks) >= room:
                    break
    rows = sorted(errors, key=lambda r: r.line) + sorted(oks, key=lambda r: r.line)
    return rows, total, ok


def render_report(
    rows: list[Result], total: int, ok: int, out_dir: Path, title: str = "Screenshots"
) -> str:
    """The report page showing ``rows`` out of ``total`` results."""
    note = f" — showing {len(rows)}; see results.jsonl for all" if total > len(rows) else ""
    cards = "\n".join(_card(r, out_dir) for r in rows)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta name="viewport" content="width=device-width,initial-scale=1">
<style>{STYLE}</style><script>{SCRIPT}</script></head>
<body><header><h1>{html.escape(title)}</h1>
<div id="summary">{total} URLs: {ok} ok, {total - ok} failed{html.escape(note)}</div>
</header>
<div class="bar"><label>Status <select id="status" onchange="applyFilter()">
<option value="all">all</option><option value="ok">ok</option><option value="error">error</option>
</select></label>
<input id="search" type="search" placeholder="search URLs" oninput="applyFilter()">
<span><span id="shown">{len(rows)}</span> shown</span></div>
<div class="grid">
{cards}
</div></body></html>
"""


def write_report(out_dir: Path, jsonl_path: Path) -> Path:
    """Write ``report.html`` next to the manifest and return its path."""
    path = out_dir / REPORT_NAME
    tmp = path.with_suffix(".html.tmp")
    rows, total, ok = pick_rows(jsonl_path)
    tmp.write_text(render_report(rows, total, ok, out_dir), encoding="utf-8")
    os.replace(tmp, path)
    return path
