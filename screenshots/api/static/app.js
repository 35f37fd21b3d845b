// The web page: submit a job to /v1/jobs, follow its progress, show its rows as a gallery.
// Everything goes through the public API with the key typed in the page.
"use strict";

const $ = (selector) => document.querySelector(selector);
const KEY_STORAGE = "screenshots-api-key";
const POLL_MS = 700;
const THUMB_CONCURRENCY = 4;

const state = { job: null, rows: new Map(), thumbs: [], loading: 0, timer: null };

$("#key").value = localStorage.getItem(KEY_STORAGE) || "";

// Calls the API with the key; waits out 429 answers as Retry-After asks.
async function api(path, options = {}, tries = 5) {
  const headers = Object.assign({ Authorization: `Bearer ${$("#key").value.trim()}` }, options.headers || {});
  const response = await fetch(path, Object.assign({}, options, { headers }));
  if (response.status === 429 && tries > 1) {
    const seconds = Number(response.headers.get("Retry-After") || "1");
    await new Promise((resolve) => setTimeout(resolve, Math.min(seconds, 30) * 1000));
    return api(path, options, tries - 1);
  }
  return response;
}

async function failure(response) {
  try {
    const body = await response.json();
    return `${response.status}: ${body.detail || response.statusText}`;
  } catch (_) {
    return `${response.status}: ${response.statusText}`;
  }
}

function showMessage(text) {
  const box = $("#message");
  box.textContent = text || "";
  box.hidden = !text;
}

function chosenOptions() {
  const options = {
    width: Number($("#width").value),
    height: Number($("#height").value),
    format: $("#format").value,
  };
  if ($("#full_page").checked) options.full_page = true;
  const delay = Number($("#delay_ms").value);
  if (delay > 0) options.delay_ms = delay;
  return options;
}

$("#job-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  showMessage("");
  localStorage.setItem(KEY_STORAGE, $("#key").value.trim());
  const file = $("#file").files[0];
  const urls = $("#urls").value.split("\n").map((line) => line.trim()).filter((line) => line && !line.startsWith("#"));
  let request;
  if (file) {
    const form = new FormData();
    form.append("file", file);
    form.append("options", JSON.stringify(chosenOptions()));
    request = { method: "POST", body: form };
  } else if (urls.length) {
    request = {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ urls, options: chosenOptions() }),
    };
  } else {
    showMessage("Paste at least one URL or choose a file.");
    return;
  }
  $("#submit").disabled = true;
  try {
    const response = await api("/v1/jobs", request);
    if (response.status !== 202) {
      showMessage(`The job was refused (${await failure(response)})`);
      return;
    }
    startJob(await response.json());
  } catch (error) {
    showMessage(`The API cannot be reached: ${error}`);
  } finally {
    $("#submit").disabled = false;
  }
});

function startJob(summary) {
  clearTimeout(state.timer);
  state.job = summary;
  state.rows.clear();
  state.thumbs = [];
  $("#gallery").replaceChildren();
  $("#progress").hidden = false;
  $("#results").hidden = false;
  showProgress(summary);
  poll();
}

async function poll() {
  const job = state.job;
  try {
    const response = await api(`/v1/jobs/${job.id}`);
    if (!response.ok) throw new Error(await failure(response));
    const summary = await response.json();
    if (state.job !== job) return;
    showProgress(summary);
    if (summary.done > state.rows.size) await loadRows(job.id);
    if (summary.state === "done" && state.rows.size >= summary.total) {
      $("#download").href = `/v1/jobs/${job.id}/results.jsonl`;
      return;
    }
  } catch (error) {
    showMessage(`Lost track of the job: ${error.message}`);
  }
  state.timer = setTimeout(poll, POLL_MS);
}

function showProgress(summary) {
  const percent = summary.total ? Math.round((100 * summary.done) / summary.total) : 0;
  $("#bar-fill").style.width = `${percent}%`;
  const word = summary.state === "done" ? "Done" : "Working";
  $("#progress-text").textContent =
    `${word}: ${summary.done} / ${summary.total} — ${summary.ok} ok, ${summary.error} errors`;
}

async function loadRows(jobId) {
  const response = await api(`/v1/jobs/${jobId}/results.jsonl`);
  if (!response.ok) return;
  const text = await response.text();
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    const row = JSON.parse(line);
    if (state.rows.has(row.line)) continue;
    state.rows.set(row.line, row);
    addCard(jobId, row);
  }
  applyFilter();
}

function addCard(jobId, row) {
  const card = document.createElement("figure");
  card.className = `card ${row.status}`;
  card.dataset.status = row.status;
  card.dataset.url = row.url.toLowerCase();
  card.dataset.line = row.line;
  const frame = document.createElement("div");
  frame.className = "frame";
  if (row.status === "ok") {
    const img = document.createElement("img");
    img.className = "thumb";
    img.alt = `Screenshot of ${row.url}`;
    frame.append(img);
    frame.addEventListener("click", () => openViewer(img, row));
    if (/^https?:\/\//i.test(row.link || "")) {
      // A bucket's link (broker mode): the browser loads it itself, without the key and
      // without CORS; a fetch of the image endpoint would be redirected there cross-origin.
      img.addEventListener("load", () => { img.dataset.loaded = "1"; }, { once: true });
      img.addEventListener("error", () => { img.alt = "image unavailable (link expired?)"; }, { once: true });
      img.src = row.link;
    } else {
      state.thumbs.push({ img, path: `/v1/jobs/${jobId}/images/${row.line}` });
      pumpThumbs();
    }
  } else {
    frame.classList.add("failed");
    frame.textContent = "no image";
  }
  const caption = document.createElement("figcaption");
  // Only http(s) URLs become links: a bad input line may hold anything (javascript:...).
  const href = httpLink(row.url);
  const link = document.createElement(href ? "a" : "span");
  if (href) {
    link.href = href;
    link.target = "_blank";
    link.rel = "noopener noreferrer";
  }
  link.className = "url";
  link.textContent = row.url || "(empty line)";
  const meta = document.createElement("span");
  meta.className = "meta";
  meta.textContent = row.status === "ok"
    ? `${row.width}×${row.height} · ${Math.round((row.bytes || 0) / 1024)} KiB · HTTP ${row.http_status ?? "?"}`
    : row.error || "error";
  const group = document.createElement("span");
  group.className = "group";
  group.hidden = true;
  caption.append(link, meta, group);
  card.append(frame, caption);
  $("#gallery").append(card);
}

// The address a row's URL may link to: an http(s) URL as the browser's own URL parser reads
// it (so case, leading white space or control characters, and tabs or newlines inside the
// scheme change nothing), or null when it must stay text.
function httpLink(text) {
  if (typeof text !== "string") return null;
  let parsed;
  try {
    parsed = new URL(text);
  } catch (_) {
    return null;
  }
  return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
}

// Loads thumbnails a few at a time (each is an authenticated request).
function pumpThumbs() {
  while (state.loading < THUMB_CONCURRENCY && state.thumbs.length) {
    const { img, path } = state.thumbs.shift();
    state.loading += 1;
    api(path)
      .then(async (response) => {
        if (!response.ok) throw new Error(await failure(response));
        img.src = URL.createObjectURL(await response.blob());
        img.dataset.loaded = "1";
      })
      .catch((error) => { img.alt = `image unavailable (${error.message})`; })
      .finally(() => { state.loading -= 1; pumpThumbs(); });
  }
}

// Look-alike groups over the job's rows: a row joins the first representative whose
// perceptual hash (the row's phash) is at most GROUP_DISTANCE bits away, else it represents a
// new group. Comparing with every representative is fine for a job (the batch report groups
// a million rows with multi-index hashing: screenshots/visual/groups.py).
const GROUP_DISTANCE = 4;
function bitsApart(a, b) {
  let x = BigInt(`0x${a}`) ^ BigInt(`0x${b}`);
  let bits = 0;
  for (; x; x &= x - 1n) bits += 1;
  return bits;
}
function lookAlikeGroups() {
  const leaders = [];
  const groupOf = new Map();
  const sorted = [...state.rows.values()].sort((a, b) => a.line - b.line);
  for (const row of sorted) {
    if (row.status !== "ok" || !/^[0-9a-f]{16}$/.test(row.phash || "")) continue;
    let leader = leaders.find((l) => bitsApart(l.phash, row.phash) <= GROUP_DISTANCE);
    if (!leader) {
      leader = { line: row.line, phash: row.phash, size: 0 };
      leaders.push(leader);
    }
    leader.size += 1;
    groupOf.set(row.line, leader);
  }
  return groupOf;
}
function applyFilter() {
  const status = $("#filter").value;
  const query = $("#search").value.trim().toLowerCase();
  const grouped = $("#grouped").checked;
  const over = Number($("#hide-over").value) || 0;
  const groupOf = lookAlikeGroups();
  for (const card of document.querySelectorAll("#gallery .card")) {
    const group = groupOf.get(Number(card.dataset.line));
    const size = group ? group.size : 1;
    const shown = (status === "all" || card.dataset.status === status) && (!query || card.dataset.url.includes(query))
      && !(grouped && group && group.line !== Number(card.dataset.line)) && !(over && size > over);
    card.hidden = !shown;
    const badge = card.querySelector(".group");
    badge.textContent = size > 1 ? `${size} look-alikes` : "";
    badge.hidden = size < 2;
  }
}
$("#filter").addEventListener("change", applyFilter);
$("#search").addEventListener("input", applyFilter);
$("#grouped").addEventListener("change", applyFilter);
$("#hide-over").addEventListener("input", applyFilter);

$("#download").addEventListener("click", async (event) => {
  event.preventDefault();
  if (!state.job) return;
  const response = await api(`/v1/jobs/${state.job.id}/results.jsonl`);
  const url = URL.createObjectURL(await response.blob());
  const anchor = document.createElement("a");
  anchor.href = url;
  anchor.download = "results.jsonl";
  anchor.click();
});

function openViewer(img, row) {
  if (!img.src) return;
  $("#viewer-img").src = img.src;
  $("#viewer-img").alt = img.alt;
  const meta = $("#viewer-meta");
  meta.replaceChildren();
  for (const name of ["url", "final_url", "title", "http_status", "width", "height", "bytes", "duration_ms", "engine", "finished_at"]) {
    if (row[name] === null || row[name] === undefined) continue;
    const term = document.createElement("dt");
    term.textContent = name;
    const value = document.createElement("dd");
    value.textContent = String(row[name]);
    meta.append(term, value);
  }
  $("#viewer").showModal();
}
