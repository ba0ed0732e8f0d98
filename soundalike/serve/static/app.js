// soundalike web page: plain JS over the JSON API (see /docs for the OpenAPI description).
"use strict";
const $ = (id) => document.getElementById(id);
const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d",
                 "#9333ea", "#ea580c", "#0d9488", "#4b5563"];
let mapData = null;

function esc(s) {
  return String(s ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
}
function clock(s) {
  const m = Math.floor(s / 60);
  return `${m}:${(s - 60 * m).toFixed(1).padStart(4, "0")}`;
}
function tagChips(tags) {
  return tags ? Object.entries(tags).map(([t, v]) => `<span title="${v}">${esc(t)} ${v.toFixed(2)}</span>`).join("") : "";
}
// manifest fields that are bookkeeping, not something to show as a chip
const HIDDEN_LABELS = new Set(["duration", "sha256", "source", "path"]);
function trackItem(t, score) {
  const li = document.createElement("li");
  const labels = Object.entries(t.labels || {}).filter(([k, v]) => typeof v !== "object" && !HIDDEN_LABELS.has(k)).slice(0, 3)
    .map(([k, v]) => `<span class="chip">${esc(k)}: ${esc(v)}</span>`).join("");
  li.innerHTML = `<span class="score">${score === undefined ? "#" + t.id : score.toFixed(3)}</span>
    <span><span class="name">${esc(t.title || t.name)}</span> <span class="muted">#${t.id} · ${t.duration.toFixed(0)} s</span>
    <br>${labels}<span class="tags">${tagChips(t.tags)}</span></span>
    <audio controls preload="none" src="${esc(t.audio_url)}"></audio>`;
  li.dataset.trackId = t.id;
  return li;
}

async function api(path, opts) {
  const r = await fetch(path, opts);
  const body = await r.json().catch(() => ({detail: r.statusText}));
  if (!r.ok) throw new Error(body.detail || r.statusText);
  return body;
}

function drawSpectrogram(spec) {
  const c = $("spectrogram"), rows = spec.db, h = rows.length, w = rows[0].length;
  c.width = w; c.height = h;
  const ctx = c.getContext("2d"), img = ctx.createImageData(w, h);
  for (let y = 0; y < h; y++) {
    const row = rows[h - 1 - y];  // low frequencies at the bottom
    for (let x = 0; x < w; x++) {
      const v = Math.max(0, Math.min(1, (row[x] + 80) / 80)), i = 4 * (y * w + x);
      img.data[i] = 255 * Math.min(1, 1.6 * v); img.data[i + 1] = 255 * v * v; img.data[i + 2] = 90 * (1 - v) + 40 * v;
      img.data[i + 3] = 255;
    }
  }
  ctx.putImageData(img, 0, 0);
}

async function query(file, trackId) {
  $("status").className = "muted";
  $("status").textContent = trackId ? `Finding what sounds like track #${trackId}...` : `Listening to ${file.name}...`;
  try {
    const body = file || await (await fetch(`/api/tracks/${trackId}/audio`)).blob();
    const res = await api("/api/similar?k=10", {method: "POST", body, headers: {"Content-Type": "application/octet-stream"}});
    $("query").hidden = false;
    $("query-name").textContent = file ? file.name : `track #${trackId}`;
    drawSpectrogram(res.spectrogram);
    $("query-tags").innerHTML = tagChips(res.tags);
    const ex = res.excerpt_of;
    $("excerpt").hidden = !ex;
    if (ex) $("excerpt").innerHTML = `This is an excerpt of <strong>${esc(ex.title || ex.name)}</strong> (#${ex.id}), from ${clock(ex.offset)} (confidence ${ex.confidence.toFixed(2)}).`;
    const ol = $("results");
    ol.replaceChildren(...res.matches.map((m) => trackItem(m, m.score)));
    $("status").textContent = `${res.matches.length} tracks in ${res.seconds.toFixed(2)} s`;
    $("timeline").hidden = true;
    $("segments-status").textContent = "";
    events(body);
    notes(body, file ? file.name : `track-${trackId}`);
    offerCleanup(body, file ? file.name : `track-${trackId}`);
    offerMix(trackId || (res.matches[0] && res.matches[0].id));
    if (file && "excerpt_of" in res && res.duration >= SEGMENT_SECONDS) segments(file);
  } catch (e) {
    $("status").className = "error";
    $("status").textContent = `Could not use that file: ${e.message}`;
  }
}

// beats and drum hits, drawn under the spectrogram on the same time axis
const EVENT_ROWS = [["beats", "#f8fafc"], ["kick", "#f97316"], ["snare", "#38bdf8"], ["hihat", "#a3e635"]];

function drawEvents(ev, width) {
  const c = $("events"), rowH = 20, pad = 42, h = rowH * EVENT_ROWS.length + 4;
  c.width = width + pad; c.height = h;
  const ctx = c.getContext("2d"), total = ev.duration || 1;
  ctx.fillStyle = "#111"; ctx.fillRect(0, 0, c.width, h);
  ctx.font = "11px sans-serif";
  EVENT_ROWS.forEach(([name, color], r) => {
    const y = 2 + r * rowH;
    ctx.fillStyle = "#9ca3af"; ctx.fillText(name, 2, y + 14);
    const times = name === "beats" ? ev.beats : (ev.drums[name] || []);
    const strengths = name === "beats" ? null : (ev.drum_strengths[name] || []);
    const downs = new Set((ev.downbeats || []).map((t) => t.toFixed(3)));
    times.forEach((t, i) => {
      const x = pad + (t / total) * width;
      ctx.globalAlpha = strengths ? Math.max(0.3, strengths[i]) : 1;
      ctx.fillStyle = color;
      const down = name === "beats" && downs.has(t.toFixed(3));
      ctx.fillRect(x, y + (down ? 1 : 5), down ? 2.5 : 1.5, down ? rowH - 2 : rowH - 10);
    });
    ctx.globalAlpha = 1;
  });
}

async function events(body) {
  $("events-status").textContent = "Finding beats and drum hits...";
  try {
    const ev = await api("/api/events", {method: "POST", body, headers: {"Content-Type": "application/octet-stream"}});
    const w = $("spectrogram").width;
    drawEvents(ev, w);
    $("events").hidden = false;
    const drums = Object.entries(ev.drums).map(([k, v]) => `${v.length} ${k}`).join(", ");
    $("events-status").textContent = ev.tempo
      ? `${ev.tempo.toFixed(1)} BPM (confidence ${ev.tempo_confidence.toFixed(2)}), ${ev.beats.length} beats, ` +
        `${ev.beats_per_bar || "?"} per bar; ${drums}`
      : `no steady beat; ${drums}`;
  } catch (e) {
    $("events").hidden = true;
    $("events-status").textContent = `Could not find beats: ${e.message}`;
  }
}

// the transcribed notes as a piano roll (pitch up, time across, brighter = louder), and the MIDI file
function drawPianoRoll(res, width) {
  const c = $("pianoroll"), pad = 42, h = c.height;
  c.width = width + pad;
  const ctx = c.getContext("2d"), total = res.duration || 1;
  ctx.fillStyle = "#111"; ctx.fillRect(0, 0, c.width, h);
  const pitches = res.notes.map((n) => n.pitch);
  const lo = Math.min(...pitches, 60) - 2, hi = Math.max(...pitches, 72) + 2, rowH = h / (hi - lo + 1);
  ctx.font = "11px sans-serif";
  for (let p = Math.ceil(lo / 12) * 12; p <= hi; p += 12) {  // a line and a label at every C
    const y = h - (p - lo + 1) * rowH;
    ctx.fillStyle = "#333"; ctx.fillRect(pad, y + rowH, width, 1);
    ctx.fillStyle = "#9ca3af"; ctx.fillText(`C${p / 12 - 1}`, 2, y + rowH);
  }
  res.notes.forEach((n) => {
    const x = pad + (n.onset / total) * width, w = Math.max(1.5, ((n.offset - n.onset) / total) * width);
    ctx.globalAlpha = 0.35 + 0.65 * (n.velocity / 127);
    ctx.fillStyle = "#a78bfa";
    ctx.fillRect(x, h - (n.pitch - lo + 1) * rowH, w, Math.max(1.5, rowH - 0.5));
  });
  ctx.globalAlpha = 1;
}

async function notes(body, name) {
  $("notes-status").textContent = "Transcribing notes...";
  $("midi").hidden = true;
  try {
    const res = await api("/api/transcribe", {method: "POST", body, headers: {"Content-Type": "application/octet-stream"}});
    drawPianoRoll(res, $("spectrogram").width);
    $("pianoroll").hidden = false;
    $("notes-status").textContent = `${res.n_notes} notes`;
    const bytes = Uint8Array.from(atob(res.midi_base64), (ch) => ch.charCodeAt(0));
    const link = $("midi");
    if (link.href) URL.revokeObjectURL(link.href);
    link.href = URL.createObjectURL(new Blob([bytes], {type: "audio/midi"}));
    link.download = `${name.replace(/\.[^.]*$/, "")}.mid`;
    link.hidden = false;
  } catch (e) {
    $("pianoroll").hidden = true;
    $("notes-status").textContent = `Could not transcribe notes: ${e.message}`;
  }
}

// "clean up": the upload restored by /api/restore, with before and after players (one plays at a time)
let cleanupBody = null, cleanupName = "";
function offerCleanup(body, name) {
  cleanupBody = body; cleanupName = name;
  for (const id of ["before", "after"]) {
    const a = $(id);
    a.pause();
    if (a.src) URL.revokeObjectURL(a.src);
    a.removeAttribute("src");
  }
  $("cleanup-players").hidden = true;
  $("cleanup-btn").disabled = false;
  $("cleanup-status").textContent = "takes noise (hiss, hum, crackle, crowd) out and refills clipped peaks";
}
async function cleanup() {
  if (!cleanupBody) return;
  const btn = $("cleanup-btn"), status = $("cleanup-status");
  btn.disabled = true;
  status.textContent = "Cleaning up...";
  try {
    const r = await fetch("/api/restore", {method: "POST", body: cleanupBody, headers: {"Content-Type": "application/octet-stream"}});
    if (!r.ok) {
      const err = await r.json().catch(() => ({detail: r.statusText}));
      throw new Error(err.detail || r.statusText);
    }
    const blob = await r.blob(), fmt = r.headers.get("X-Restore-Format") || "wav";
    const clipped = parseFloat(r.headers.get("X-Restore-Clipped") || "0");
    $("before").src = URL.createObjectURL(cleanupBody);
    $("after").src = URL.createObjectURL(blob);
    const link = $("restored");
    if (link.href) URL.revokeObjectURL(link.href);
    link.href = URL.createObjectURL(blob);
    link.download = `${cleanupName.replace(/\.[^.]*$/, "")}-restored.${fmt}`;
    $("cleanup-players").hidden = false;
    status.textContent = clipped > 0 ? `Cleaned up; ${(100 * clipped).toFixed(2)} % of the samples were clipped and refilled` : "Cleaned up";
  } catch (e) {
    status.textContent = `Could not clean it up: ${e.message}`;
  } finally {
    btn.disabled = false;
  }
}
function setupCleanup() {
  $("cleanup-btn").addEventListener("click", cleanup);
}

// one player at a time: starting any player pauses the others (before and after: at the same place)
function setupOnePlayer() {
  document.addEventListener("play", (e) => {
    const pair = [$("before"), $("after")], i = pair.indexOf(e.target);
    for (const a of document.querySelectorAll("audio")) {
      if (a === e.target || a.paused) continue;
      if (i >= 0 && a === pair[1 - i]) e.target.currentTime = a.currentTime;
      a.pause();
    }
  }, true);
}

// "play as a mix": /api/playlist around the current track (or the upload's nearest), played in order
let mixSeed = null, mixTracks = [], mixAt = 0;
function offerMix(seed) {
  mixSeed = seed ?? null;
  $("mix-btn").hidden = mixSeed === null;
}
function playMixAt(i) {
  if (i < 0 || i >= mixTracks.length) return;
  mixAt = i;
  const player = $("mix-player"), t = mixTracks[i].track;
  player.src = t.audio_url;
  player.play().catch(() => {});
  [...$("mix-list").children].forEach((li, k) => li.toggleAttribute("aria-current", k === i));
  $("mix-status").textContent = `Playing ${i + 1} of ${mixTracks.length}: ${t.title || t.name}`;
}
async function playMix() {
  if (mixSeed === null) return;
  $("mix").hidden = false;
  $("mix-status").textContent = "Making a mix...";
  try {
    const res = await api(`/api/playlist?seed_track=${encodeURIComponent(mixSeed)}&n=20`);
    mixTracks = res.tracks;
    $("mix-list").replaceChildren(...mixTracks.map((m, i) => {
      const li = document.createElement("li"), b = document.createElement("button");
      b.type = "button";
      b.textContent = m.track.title || m.track.name;
      b.addEventListener("click", () => playMixAt(i));
      li.append(b);
      return li;
    }));
    playMixAt(0);
  } catch (e) {
    $("mix-status").textContent = `Could not make a mix: ${e.message}`;
  }
}
function setupMix() {
  $("mix-btn").addEventListener("click", playMix);
  $("mix-player").addEventListener("ended", () => playMixAt(mixAt + 1));
}

// uploads at least this long are also read as a recording of several catalog tracks
const SEGMENT_SECONDS = 15;

async function segments(file) {
  $("segments-status").textContent = "Looking for every catalog track in the recording...";
  try {
    const res = await api("/api/segments", {method: "POST", body: file, headers: {"Content-Type": "application/octet-stream"}});
    const tl = $("timeline"), total = res.duration || 1;
    const pct = (t) => `${(100 * t / total).toFixed(3)}%`;
    const bars = res.segments.map((s, i) => {
      const d = document.createElement("div");
      d.className = "seg";
      d.style.left = pct(s.start); d.style.width = pct(s.end - s.start);
      d.style.background = PALETTE[i % PALETTE.length];
      d.title = `${s.title || s.name} (#${s.id}): ${clock(s.start)}-${clock(s.end)} of the upload, from ${clock(s.offset)} in the track`;
      d.textContent = s.title || s.name;
      d.dataset.trackId = s.id;
      return d;
    });
    const holes = res.gaps.map((g) => {
      const d = document.createElement("div");
      d.className = "gap";
      d.style.left = pct(g.start); d.style.width = pct(g.end - g.start);
      d.title = `${clock(g.start)}-${clock(g.end)}: nothing from the catalog`;
      return d;
    });
    tl.replaceChildren(...holes, ...bars);
    tl.hidden = false;
    $("segments-status").textContent = `${res.segments.length} catalog tracks in ${clock(total)} (${res.seconds.toFixed(1)} s)`;
  } catch (e) {
    $("segments-status").textContent = `Could not read it as a recording of catalog tracks: ${e.message}`;
  }
}

function setupUpload() {
  const drop = $("drop");
  $("file").addEventListener("change", (e) => e.target.files[0] && query(e.target.files[0]));
  ["dragenter", "dragover"].forEach((ev) => drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.add("over"); }));
  ["dragleave", "drop"].forEach((ev) => drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.remove("over"); }));
  drop.addEventListener("drop", (e) => e.dataTransfer.files[0] && query(e.dataTransfer.files[0]));
  drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") $("file").click(); });
}

// one hue per label, evenly around the colour wheel: every label its own colour, however many there are
function labelColour(i, n) {
  return `hsl(${Math.round((360 * i) / Math.max(1, n))}, 72%, 44%)`;
}
function mapXY(p, c) {
  const pad = 14;
  return [pad + (p.x + 1) / 2 * (c.width - 2 * pad), pad + (1 - (p.y + 1) / 2) * (c.height - 2 * pad)];
}
function drawMap(highlight) {
  const c = $("map");
  c.width = c.clientWidth * devicePixelRatio; c.height = 360 * devicePixelRatio;
  const ctx = c.getContext("2d"), colour = {};
  mapData.labels.forEach((l, i) => { colour[l] = labelColour(i, mapData.labels.length); });
  ctx.clearRect(0, 0, c.width, c.height);
  for (const p of mapData.points) {
    const [x, y] = mapXY(p, c);
    ctx.beginPath(); ctx.arc(x, y, (p.id === highlight ? 7 : 4) * devicePixelRatio, 0, 2 * Math.PI);
    ctx.fillStyle = colour[p.label]; ctx.globalAlpha = p.id === highlight ? 1 : 0.75; ctx.fill();
  }
  ctx.globalAlpha = 1;
  // swatch colours through the CSSOM: the content security policy forbids inline style attributes
  $("legend").replaceChildren(...mapData.labels.map((l) => {
    const span = document.createElement("span"), i = document.createElement("i");
    i.style.background = colour[l];
    span.append(i, l);
    return span;
  }));
}
function nearest(ev) {
  const c = $("map"), r = c.getBoundingClientRect();
  const mx = (ev.clientX - r.left) * c.width / r.width, my = (ev.clientY - r.top) * c.height / r.height;
  let best = null, bd = 1e9;
  for (const p of mapData.points) {
    const [x, y] = mapXY(p, c), d = (x - mx) ** 2 + (y - my) ** 2;
    if (d < bd) { bd = d; best = p; }
  }
  return bd < (12 * devicePixelRatio) ** 2 ? best : null;
}
async function setupMap() {
  mapData = await api("/api/map");
  $("map-note").textContent = `(PCA, ${mapData.points.length} tracks, coloured by ${mapData.label_key})`;
  drawMap();
  $("map").addEventListener("mousemove", (ev) => {
    const p = nearest(ev);
    $("map-hover").textContent = p ? `#${p.id} ${p.name} (${p.label})` : "Hover a point to name its track; click to play it and find what sounds like it.";
    drawMap(p && p.id);
  });
  $("map").addEventListener("click", (ev) => {
    const p = nearest(ev);
    if (!p) return;
    const player = $("map-player");  // a player on the page: it has controls, and only one plays at a time
    player.hidden = false;
    player.src = `/api/tracks/${p.id}/audio`;
    player.play().catch(() => {});
    query(null, p.id);
  });
  addEventListener("resize", () => drawMap());
}

async function recommendFor(user) {
  $("rec-status").className = "muted";
  $("rec-status").textContent = `Ranking for ${user}... (the first request after new listens fits the recommender)`;
  try {
    const res = await api(`/api/recommend?k=10&max_per=3&per=label&user=${encodeURIComponent(user)}`);
    const b = res.blend;
    $("rec-status").textContent = b.tuned
      ? `Hybrid: listening history x ${b.weight}, audio x ${(1 - b.weight).toFixed(2)} (tuned on held-out listens); at most 3 per label`
      : `By audio: ${b.note}`;
    $("recs").replaceChildren(...res.recommendations.map((r) => {
      const li = trackItem(r.track, r.score);
      const why = document.createElement("span");
      why.className = "why" + (r.new ? " new" : "");
      why.textContent = r.reason;
      li.children[1].append(document.createElement("br"), why);
      return li;
    }));
  } catch (e) {
    $("rec-status").className = "error";
    $("rec-status").textContent = e.message;
    $("recs").replaceChildren();
  }
}
async function setupRecommend() {
  $("rec-form").addEventListener("submit", (e) => { e.preventDefault(); recommendFor($("rec-user").value.trim()); });
  const res = await api("/api/users?limit=1000");
  $("rec-users").replaceChildren(...res.users.map((u) => Object.assign(document.createElement("option"),
    {value: u.user, label: `${u.listens} listens`})));
  if (!res.users.length) $("rec-status").textContent = "No listens yet: `soundalike listens import FILE.csv` adds them.";
}

let searchTimer = null;
async function search() {
  const q = $("search").value;
  const res = await api(`/api/tracks?limit=200&q=${encodeURIComponent(q)}`);
  $("count").textContent = `${res.total} tracks${q ? ` matching "${q}"` : ""}`;
  $("catalog").replaceChildren(...res.tracks.map((t) => trackItem(t)));
}

async function main() {
  setupUpload();
  setupCleanup();
  setupOnePlayer();
  setupMix();
  $("search").addEventListener("input", () => { clearTimeout(searchTimer); searchTimer = setTimeout(search, 200); });
  try {
    const h = await api("/healthz");
    $("health").textContent = `${h.catalog}: ${h.tracks} tracks`;
    await Promise.all([search(), setupMap(), setupRecommend()]);
  } catch (e) {
    $("health").className = "error";
    $("health").textContent = `The server did not answer: ${e.message}`;
  }
}
main();
