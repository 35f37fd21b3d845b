"""``report.html``: a gallery of a run that a person can open from disk.

One self-contained page (no network, no framework): a card per row with its thumbnail, URL,
status and the main facts; a status filter, a search box over URLs and titles, sorting by input
line, capture time or image size; a click on a card opens a dialog with the full image and
every column of the row (page metadata and timings included). Thumbnails load lazily from the
screenshots' links (relative paths for local storage, so the output directory can be moved).
Large runs show the first :data:`MAX_ROWS` rows, errors first.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

from screenshots.batch.manifest import read_results
from screenshots.core.result import Result

REPORT_NAME = "report.html"
#: Rows shown in the report at most; the manifest always has them all.
MAX_ROWS = 5000

#: Columns shown in the dialog, in order, with their labels.
DETAILS = (
    ("url", "URL"),
    ("status", "Status"),
    ("error", "Error"),
    ("http_status", "HTTP status"),
    ("final_url", "Final URL"),
    ("title", "Title"),
    ("content_type", "Content type"),
    ("size", "Image"),
    ("engine", "Engine"),
    ("attempts", "Attempts"),
    ("requests", "Requests"),
    ("failed_requests", "Failed requests"),
    ("blocked_requests", "Blocked requests"),
    ("console_errors", "Console errors"),
    ("console_messages", "Console messages"),
    ("timings", "Timings (ms)"),
    ("finished_at", "Finished"),
    ("line", "Input line"),
    ("key", "Storage key"),
)

STYLE = """
*{box-sizing:border-box}
body{font-family:system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d232a}
header{padding:16px 24px;background:#1d3557;color:#fff}
header h1{margin:0 0 4px;font-size:20px}
.bar{position:sticky;top:0;z-index:1;background:#f6f7f9ee;padding:8px 24px;display:flex;
  flex-wrap:wrap;gap:12px;align-items:center;border-bottom:1px solid #dde}
.bar input[type=search]{min-width:260px;padding:4px 8px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:16px;
  padding:16px 24px}
.card{background:#fff;border-radius:8px;box-shadow:0 1px 3px #0002;overflow:hidden}
.card[hidden]{display:none}
.card .thumb{display:block;width:100%;padding:0;border:0;background:#ddd;cursor:zoom-in}
.card img{width:100%;height:170px;object-fit:cover;object-position:top;display:block}
.card .meta{padding:8px 10px;font-size:13px;word-break:break-all}
.card.error .meta{border-top:3px solid #e63946}
.card.ok .meta{border-top:3px solid #2a9d8f}
.err{color:#b00020}
.noimg{height:170px;display:flex;align-items:center;justify-content:center;color:#999;
  background:#eee}
dialog{width:min(1100px,95vw);max-height:92vh;border:0;border-radius:10px;padding:0;
  box-shadow:0 10px 40px #0006}
dialog::backdrop{background:#0009}
dialog .top{display:flex;justify-content:space-between;align-items:center;padding:8px 12px;
  background:#1d3557;color:#fff;position:sticky;top:0}
dialog .body{display:grid;grid-template-columns:minmax(0,3fr) minmax(0,2fr);gap:12px;
  padding:12px;overflow:auto;max-height:calc(92vh - 48px)}
dialog .body img{max-width:100%;border:1px solid #ccc}
dialog dl{margin:0;font-size:13px;display:grid;grid-template-columns:max-content 1fr;
  gap:4px 10px;overflow-wrap:anywhere}
dialog dt{font-weight:600;color:#445}
dialog dd{margin:0}
dialog pre{margin:0;white-space:pre-wrap;font-size:12px}
"""

SCRIPT = """
function cards(){return Array.prototype.slice.call(document.querySelectorAll('.card'));}
function applyFilter(){
  var status=document.getElementById('status').value;
  var text=document.getElementById('search').value.trim().toLowerCase();
  var shown=0;
  cards().forEach(function(card){
    var ok=(status==='all'||card.dataset.status===status)&&
      (text===''||card.dataset.search.indexOf(text)>=0);
    card.hidden=!ok; if(ok){shown++;}
  });
  document.getElementById('shown').textContent=shown;
}
function applySort(){
  var how=document.getElementById('sort').value;
  var key={line:'line',time:'duration',size:'bytes'}[how.split('-')[0]];
  var sign=how.endsWith('-desc')?-1:1;
  var grid=document.querySelector('.grid');
  cards().sort(function(a,b){
    var x=Number(a.dataset[key]||-1), y=Number(b.dataset[key]||-1);
    return sign*(x-y)||(Number(a.dataset.line)-Number(b.dataset.line));
  }).forEach(function(card){grid.appendChild(card);});
}
function show(card){
  var row=JSON.parse(card.dataset.row);
  var dialog=document.getElementById('viewer');
  var img=document.getElementById('viewer-img');
  var link=document.getElementById('viewer-link');
  if(card.dataset.src){img.src=card.dataset.src;img.hidden=false;link.href=card.dataset.src;
    link.hidden=false;}
  else{img.removeAttribute('src');img.hidden=true;link.hidden=true;}
  document.getElementById('viewer-title').textContent=row.url;
  var list=document.getElementById('viewer-meta'); list.textContent='';
  LABELS.forEach(function(pair){
    var value=row[pair[0]];
    if(value===null||value===undefined||value===''||(Array.isArray(value)&&!value.length)){return;}
    var dt=document.createElement('dt'); dt.textContent=pair[1];
    var dd=document.createElement('dd'); dd.dataset.field=pair[0];
    if(Array.isArray(value)){var pre=document.createElement('pre');
      pre.textContent=value.join('\\n'); dd.appendChild(pre);}
    else {dd.textContent=String(value);}
    list.appendChild(dt); list.appendChild(dd);
  });
  dialog.showModal();
}
document.addEventListener('click',function(event){
  var card=event.target.closest&&event.target.closest('.card .thumb');
  if(card){event.preventDefault();show(card.closest('.card'));}
});
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


def _timings(result: Result) -> str | None:
    parts = [
        f"{name} {value}"
        for name, value in (
            ("queued", result.queued_ms),
            ("navigation", result.navigation_ms),
            ("wait", result.wait_ms),
            ("capture", result.capture_ms),
            ("upload", result.upload_ms),
            ("total", result.duration_ms),
        )
        if value is not None
    ]
    return ", ".join(parts) or None


def _details(result: Result) -> dict[str, object]:
    """The row as the dialog shows it."""
    row: dict[str, object] = dict(result.to_dict())
    row["console_messages"] = list(result.console_messages)
    if result.width and result.height:
        size = f"{result.width}×{result.height} {result.format or ''}"
        row["size"] = f"{size.strip()}, {(result.bytes or 0) / 1024:.0f} KB"
    row["timings"] = _timings(result)
    return {name: row.get(name) for name, _label in DETAILS}


def _card(result: Result, out_dir: Path) -> str:
    esc = html.escape
    src = _image_src(result, out_dir)
    if src:
        picture = (
            f'<img loading="lazy" src="{esc(src)}" alt="screenshot of {esc(result.url)}">'
        )
    else:
        picture = '<div class="noimg">no screenshot</div>'
    details = [f'<a class="url" href="{esc(result.url)}">{esc(result.url)}</a>']
    if result.ok:
        size = f"{result.width}×{result.height}, {(result.bytes or 0) / 1024:.0f} KB"
        status = f" · HTTP {result.http_status}" if result.http_status else ""
        details.append(f"<div>{esc(size)}{esc(status)} · {result.duration_ms} ms</div>")
        if result.title:
            details.append(f'<div class="title"><b>{esc(result.title)}</b></div>')
    else:
        details.append(f'<div class="err">{esc(result.error or "error")}</div>')
    search = " ".join(filter(None, (result.url, result.final_url, result.title))).lower()
    data = {
        "status": result.status,
        "line": str(result.line),
        "duration": "" if result.duration_ms is None else str(result.duration_ms),
        "bytes": "" if result.bytes is None else str(result.bytes),
        "search": search,
        "src": src or "",
        "row": json.dumps(_details(result), ensure_ascii=False),
    }
    attributes = " ".join(f'data-{name}="{esc(value)}"' for name, value in data.items())
    return (
        f'<div class="card {esc(result.status)}" {attributes}>'
        f'<button type="button" class="thumb" title="show the image and its details">'
        f"{picture}</button>"
        '<div class="meta">' + "".join(details) + "</div></div>"
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
    labels = json.dumps([list(pair) for pair in DETAILS], ensure_ascii=False)
    script = f"var LABELS={labels};\n{SCRIPT}".replace("</", "<\\/")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta name="viewport" content="width=device-width,initial-scale=1">
<style>{STYLE}</style><script>{script}</script></head>
<body><header><h1>{html.escape(title)}</h1>
<div id="summary">{total} URLs: {ok} ok, {total - ok} failed{html.escape(note)}</div>
</header>
<div class="bar"><label>Status <select id="status" onchange="applyFilter()">
<option value="all">all</option><option value="ok">ok</option><option value="error">error</option>
</select></label>
<input id="search" type="search" placeholder="search URLs and titles" oninput="applyFilter()">
<label>Sort <select id="sort" onchange="applySort()">
<option value="line">input order</option>
<option value="time-desc">slowest first</option><option value="time">fastest first</option>
<option value="size-desc">largest first</option><option value="size">smallest first</option>
</select></label>
<span><span id="shown">{len(rows)}</span> shown</span></div>
<div class="grid">
{cards}
</div>
<dialog id="viewer"><div class="top"><span id="viewer-title"></span>
<span><a id="viewer-link" target="_blank" style="color:#fff">open image</a>
<button type="button" id="viewer-close" onclick="this.closest('dialog').close()">close</button>
</span></div>
<div class="body"><div><img id="viewer-img" alt="full screenshot"></div>
<dl id="viewer-meta"></dl></div></dialog>
</body></html>
"""


def write_report(out_dir: Path, jsonl_path: Path) -> Path:
    """Write ``report.html`` next to the manifest and return its path."""
    path = out_dir / REPORT_NAME
    tmp = path.with_suffix(".html.tmp")
    rows, total, ok = pick_rows(jsonl_path)
    tmp.write_text(render_report(rows, total, ok, out_dir), encoding="utf-8")
    os.replace(tmp, path)
    return path
