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
// manifest fields that are bookkeeping, or already shown as the title and artist, not something to show as a chip
const HIDDEN_LABELS = new Set(["duration", "sha256", "source", "path", "title", "artist", "album", "composer",
                               "work", "soundfont"]);
// a track's title (its tags', else its manifest's; the file name where neither has one) and its artist
function trackTitle(t) { return t.title || t.name; }
function trackLabel(t) { return t.title && t.artist ? `${t.title} · ${t.artist}` : trackTitle(t); }
// `how`: what the order means, for the rank's tooltip (the raw score is no use to a listener: it is not shown)
function trackItem(t, score, how) {
  const li = document.createElement("li");
  const labels = Object.entries(t.labels || {}).filter(([k, v]) => typeof v !== "object" && !HIDDEN_LABELS.has(k)).slice(0, 3)
    .map(([k, v]) => `<span class="chip">${esc(k)}: ${esc(v)}</span>`).join("");
  if (score !== undefined) li.dataset.rank = score.rank;
  const rank = score === undefined ? `<span class="muted">#${t.id}</span>` : `${score.rank}`;
  const tip = score === undefined ? `catalog track #${t.id}` : `number ${score.rank}; ${how}: ${score.value.toFixed(3)}`;
  const artist = t.title && t.artist ? `<span class="artist">${esc(t.artist)}</span> · ` : "";
  li.innerHTML = `<span class="score" title="${esc(tip)}">${rank}</span>
    <span><span class="name">${esc(trackTitle(t))}</span> <span class="muted">${artist}${clock(t.duration).replace(/\.\d$/, "")}</span>
    <br>${labels}<span class="tags">${tagChips(t.tags)}</span></span>
    <audio controls preload="none" src="${esc(t.audio_url)}" aria-label="play ${esc(trackLabel(t))}"></audio>`;
  li.dataset.trackId = t.id;
  return li;
}

// an error in a line or two (a phone's width): its first clause, the full text under "details"
function shortError(text) {
  const full = String(text || "something went wrong").trim();
  let short = full.replace(/\s*\([^)]{24,}\)/g, "").replace(/^(cannot \w+|decoding|reading) the upload: /i, "");
  if (short.length > 110) short = short.slice(0, short.lastIndexOf(" ", 100)) + "...";
  return {short, full};
}
// `prefix`: what failed, in a few words ("Could not use that file"); the reason follows it
function showError(el, prefix, e) {
  const {short, full} = shortError(e && e.message !== undefined ? e.message : e);
  el.className = "error";
  el.replaceChildren(`${prefix}: ${short}`);
  if (full !== short && full.length > short.length) {
    const more = document.createElement("details"), sum = document.createElement("summary");
    sum.textContent = "details";
    more.append(sum, full);
    el.append(" ", more);
  }
}
function showStatus(el, text) {
  el.className = "muted";
  el.replaceChildren(text);
}

// the message of an error answer: a typed error's `detail`, or FastAPI's list of invalid parameters
function detailOf(body, fallback) {
  const d = body && body.detail;
  if (Array.isArray(d)) return d.map((x) => `${(x.loc || []).slice(-1)[0] || "request"}: ${x.msg}`).join("; ");
  return d || fallback || "the server did not say why";
}
async function api(path, opts) {
  const r = await fetch(path, opts);
  const body = await r.json().catch(() => ({detail: r.statusText}));
  if (!r.ok) throw new Error(detailOf(body, r.statusText));
  return body;
}

// POST a file with a progress bar: how much is uploaded, then (indeterminate) while the server analyses it
function postWithProgress(path, body, what) {
  const box = $("busy"), bar = $("busy-bar"), status = $("status"), t0 = performance.now();
  box.hidden = false;
  bar.value = 0;
  $("drop").setAttribute("aria-busy", "true");
  let phase = "Uploading";
  const tick = () => {
    const secs = Math.round((performance.now() - t0) / 1000);
    showStatus(status, phase === "Uploading" ? `Uploading ${what}: ${Math.round(100 * bar.value)} %`
                                             : `Listening to ${what}... ${secs} s`);
  };
  const timer = setInterval(tick, 500);
  tick();
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", (e) => { if (e.lengthComputable) { bar.value = e.loaded / e.total; tick(); } });
    xhr.upload.addEventListener("load", () => { phase = "Listening"; bar.removeAttribute("value"); tick(); });
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300 && xhr.response) resolve(xhr.response);
      else reject(new Error(detailOf(xhr.response, xhr.statusText || `HTTP ${xhr.status}`)));
    });
    xhr.addEventListener("error", () => reject(new Error("the server could not be reached")));
    xhr.send(body);
  }).finally(() => {
    clearInterval(timer);
    box.hidden = true;
    $("drop").removeAttribute("aria-busy");
  });
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

// `name`: what to call a catalog track queried by id (its title), where there is no file name
async function query(file, trackId, name) {
  const what = file ? file.name : (name || `track #${trackId}`);
  try {
    const body = file || await (await fetch(`/api/tracks/${trackId}/audio`)).blob();
    const res = await postWithProgress("/api/similar?k=10", body, what);
    $("query").hidden = false;
    const up = res.upload || {};
    $("query-name").textContent = up.title ? (up.artist ? `${up.title} · ${up.artist}` : up.title) : what;
    drawSpectrogram(res.spectrogram);
    offerPlayer(body, res.spectrogram.seconds);
    $("query-tags").innerHTML = tagChips(res.tags);
    const ex = res.excerpt_of;
    $("excerpt").hidden = !ex;
    if (ex) $("excerpt").innerHTML = `This is an excerpt of <strong>${esc(trackLabel(ex))}</strong> (#${ex.id}), from ${clock(ex.offset)} (confidence ${ex.confidence.toFixed(2)}).`;
    const ol = $("results");
    const how = "similarity (cosine of the song embeddings, 1 = the same sound)";
    ol.replaceChildren(...res.matches.map((m) => trackItem(m, {rank: m.rank, value: m.score}, how)));
    showStatus($("status"), `${res.matches.length} tracks that sound like it, best first (${res.seconds.toFixed(1)} s)`);
    $("timeline").hidden = true;
    $("segments-status").textContent = "";
    events(body);
    notes(body, file ? file.name : `track-${trackId}`);
    offerCleanup(body, file ? file.name : `track-${trackId}`);
    offerMix(trackId || (res.matches[0] && res.matches[0].id));
    if (file && "excerpt_of" in res && res.duration >= SEGMENT_SECONDS) segments(file);
  } catch (e) {
    showError($("status"), file ? "Could not use that file" : "Could not use that track", e);
  }
}

// the upload's own player: the spectrogram is its seek bar (click, or arrow keys when focused), with a playhead
let playerSeconds = 0;
function offerPlayer(body, seconds) {
  const a = $("upload-player");
  a.pause();
  if (a.src) URL.revokeObjectURL(a.src);
  a.src = URL.createObjectURL(body);
  playerSeconds = seconds;
  $("spectrogram").setAttribute("aria-valuemax", seconds.toFixed(1));
  movePlayhead();
}
function playerLength() {
  const d = $("upload-player").duration;
  return Number.isFinite(d) && d > 0 ? d : playerSeconds;
}
function movePlayhead() {
  const a = $("upload-player"), total = playerLength(), head = $("playhead"), t = a.currentTime || 0;
  head.hidden = !(total > 0) || (a.paused && t === 0);
  head.style.left = `${(100 * Math.min(1, t / (total || 1))).toFixed(3)}%`;
  const c = $("spectrogram");
  c.setAttribute("aria-valuenow", t.toFixed(1));
  c.setAttribute("aria-valuetext", `${clock(t)} of ${clock(total)}`);
}
function seekTo(t, play) {
  const a = $("upload-player"), total = playerLength();
  a.currentTime = Math.max(0, Math.min(total, t));
  movePlayhead();
  if (play) a.play().catch(() => {});
}
function setupPlayer() {
  const a = $("upload-player"), c = $("spectrogram");
  let frame = 0;
  const follow = () => { movePlayhead(); frame = a.paused ? 0 : requestAnimationFrame(follow); };
  a.addEventListener("play", () => { if (!frame) frame = requestAnimationFrame(follow); });
  for (const ev of ["pause", "seeked", "timeupdate", "loadedmetadata", "ended"]) a.addEventListener(ev, movePlayhead);
  c.addEventListener("click", (ev) => {
    const r = c.getBoundingClientRect();
    seekTo(((ev.clientX - r.left) / r.width) * playerLength(), true);
  });
  c.addEventListener("keydown", (ev) => {
    const step = {ArrowRight: 5, ArrowLeft: -5, ArrowUp: 5, ArrowDown: -5, PageUp: 30, PageDown: -30}[ev.key];
    if (step !== undefined) seekTo(a.currentTime + step, false);
    else if (ev.key === "Home") seekTo(0, false);
    else if (ev.key === "End") seekTo(playerLength(), false);
    else if (ev.key === " " || ev.key === "Enter") { if (a.paused) a.play().catch(() => {}); else a.pause(); }
    else return;
    ev.preventDefault();
  });
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
  showStatus($("events-status"), "Finding beats and drum hits...");
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
    showError($("events-status"), "Could not find beats", e);
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
  showStatus($("notes-status"), "Transcribing notes...");
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
    showError($("notes-status"), "Could not transcribe notes", e);
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
  showStatus($("cleanup-status"), "takes noise (hiss, hum, crackle, crowd) out and refills clipped peaks");
}
async function cleanup() {
  if (!cleanupBody) return;
  const btn = $("cleanup-btn"), status = $("cleanup-status");
  btn.disabled = true;
  showStatus(status, "Cleaning up...");
  try {
    const r = await fetch("/api/restore", {method: "POST", body: cleanupBody, headers: {"Content-Type": "application/octet-stream"}});
    if (!r.ok) {
      const err = await r.json().catch(() => ({detail: r.statusText}));
      throw new Error(detailOf(err, r.statusText));
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
    showError(status, "Could not clean it up", e);
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
  showStatus($("mix-status"), `Playing ${i + 1} of ${mixTracks.length}: ${trackLabel(t)}`);
}
async function playMix() {
  if (mixSeed === null) return;
  $("mix").hidden = false;
  showStatus($("mix-status"), "Making a mix...");
  try {
    const res = await api(`/api/playlist?seed_track=${encodeURIComponent(mixSeed)}&n=20`);
    mixTracks = res.tracks;
    $("mix-list").replaceChildren(...mixTracks.map((m, i) => {
      const li = document.createElement("li"), b = document.createElement("button");
      b.type = "button";
      b.textContent = trackLabel(m.track);
      b.addEventListener("click", () => playMixAt(i));
      li.append(b);
      return li;
    }));
    playMixAt(0);
  } catch (e) {
    showError($("mix-status"), "Could not make a mix", e);
  }
}
function setupMix() {
  $("mix-btn").addEventListener("click", playMix);
  $("mix-player").addEventListener("ended", () => playMixAt(mixAt + 1));
}

// uploads at least this long are also read as a recording of several catalog tracks
const SEGMENT_SECONDS = 15;

async function segments(file) {
  showStatus($("segments-status"), "Looking for every catalog track in the recording...");
  try {
    const res = await api("/api/segments", {method: "POST", body: file, headers: {"Content-Type": "application/octet-stream"}});
    const tl = $("timeline"), total = res.duration || 1;
    const pct = (t) => `${(100 * t / total).toFixed(3)}%`;
    const bars = res.segments.map((s, i) => {
      const d = document.createElement("div");
      d.className = "seg";
      d.style.left = pct(s.start); d.style.width = pct(s.end - s.start);
      d.style.background = PALETTE[i % PALETTE.length];
      d.title = `${trackLabel(s)} (#${s.id}): ${clock(s.start)}-${clock(s.end)} of the upload, from ${clock(s.offset)} in the track`;
      d.textContent = trackTitle(s);
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
    showError($("segments-status"), "Could not read it as a recording of catalog tracks", e);
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
  const hp = mapData.points.find((p) => p.id === highlight);
  if (hp) {  // a ring round the named point: where the keyboard (or the mouse) is
    const [x, y] = mapXY(hp, c);
    ctx.beginPath(); ctx.arc(x, y, 11 * devicePixelRatio, 0, 2 * Math.PI);
    ctx.lineWidth = 2 * devicePixelRatio; ctx.strokeStyle = "#111"; ctx.stroke();
  }
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
// from the keyboard: the next point in an arrow's direction (within 60 degrees of it, nearest first)
function stepFrom(p, dx, dy) {
  let best = null, bd = Infinity;
  for (const q of mapData.points) {
    const vx = q.x - p.x, vy = q.y - p.y, along = vx * dx + vy * dy, dist = Math.hypot(vx, vy);
    if (q === p || along <= 0 || along < 0.5 * dist) continue;
    const cost = dist * (2 - along / dist);
    if (cost < bd) { bd = cost; best = q; }
  }
  return best;
}
let mapFocus = null;
const MAP_HINT = "Hover a point to name its track; click to play it and find what sounds like it. From the keyboard: Tab to the map, arrow keys to move, Enter to play.";
function nameOnMap(p) {
  $("map-hover").textContent = p ? `${p.name} (${p.label}), #${p.id}` : MAP_HINT;
  drawMap(p && p.id);
}
function playFromMap(p) {
  const player = $("map-player");  // a player on the page: it has controls, and only one plays at a time
  player.hidden = false;
  player.src = `/api/tracks/${p.id}/audio`;
  player.play().catch(() => {});
  query(null, p.id, p.name);
}
async function setupMap() {
  mapData = await api("/api/map");
  $("map-note").textContent = `(PCA, ${mapData.points.length} tracks, coloured by ${mapData.label_key})`;
  drawMap();
  const c = $("map");
  c.addEventListener("mousemove", (ev) => nameOnMap(nearest(ev) || mapFocus));
  c.addEventListener("click", (ev) => {
    const p = nearest(ev);
    if (p) { mapFocus = p; nameOnMap(p); playFromMap(p); }
  });
  c.addEventListener("focus", () => {
    if (!mapFocus && mapData.points.length) {  // start at the point nearest the centre
      mapFocus = mapData.points.reduce((a, b) => (Math.hypot(a.x, a.y) <= Math.hypot(b.x, b.y) ? a : b));
    }
    nameOnMap(mapFocus);
  });
  c.addEventListener("blur", () => drawMap());
  c.addEventListener("keydown", (ev) => {
    const dir = {ArrowRight: [1, 0], ArrowLeft: [-1, 0], ArrowUp: [0, 1], ArrowDown: [0, -1]}[ev.key];
    if (dir && mapFocus) {
      mapFocus = stepFrom(mapFocus, ...dir) || mapFocus;
      nameOnMap(mapFocus);
    } else if ((ev.key === "Enter" || ev.key === " ") && mapFocus) {
      playFromMap(mapFocus);
    } else if (ev.key === "Escape") {
      $("map-player").pause();
    } else {
      return;
    }
    ev.preventDefault();
  });
  addEventListener("resize", () => drawMap(document.activeElement === c && mapFocus ? mapFocus.id : undefined));
}

async function recommendFor(user) {
  showStatus($("rec-status"), `Ranking for ${user}... (the first request after new listens fits the recommender)`);
  try {
    const res = await api(`/api/recommend?k=10&max_per=3&per=label&user=${encodeURIComponent(user)}`);
    const b = res.blend;
    showStatus($("rec-status"), b.tuned
      ? `Best first, by what listeners like you played and by sound (history x ${b.weight}, audio x ` +
        `${(1 - b.weight).toFixed(2)}, tuned on held-out listens); at most 3 per label`
      : `Best first, by sound: ${b.note}`);
    const how = b.tuned ? "score (the blend of listening history and sound; only the order means something)"
                        : "score (closeness in sound to what they played; only the order means something)";
    if (!res.recommendations.length) showStatus($("rec-status"), `Nothing new for ${user}: they have played every track`);
    $("recs").replaceChildren(...res.recommendations.map((r) => {
      const li = trackItem(r.track, {rank: r.rank, value: r.score}, how);
      const why = document.createElement("span");
      why.className = "why" + (r.new ? " new" : "");
      why.textContent = r.reason;
      li.children[1].append(document.createElement("br"), why);
      return li;
    }));
  } catch (e) {
    showError($("rec-status"), "No recommendations", e);
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
  setupPlayer();
  setupMix();
  $("search").addEventListener("input", () => { clearTimeout(searchTimer); searchTimer = setTimeout(search, 200); });
  try {
    const h = await api("/healthz");
    $("health").textContent = `${h.catalog}: ${h.tracks} tracks`;
    await Promise.all([search(), setupMap(), setupRecommend()]);
  } catch (e) {
    showError($("health"), "The server did not answer", e);
  }
}
main();
