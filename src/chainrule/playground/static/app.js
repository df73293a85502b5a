// chainrule playground page: settings in the URL, a session on the server, frames over SSE.
"use strict";
const TOKEN = document.querySelector('meta[name="token"]').content;
const FEATURES = ["x1", "x2", "x1^2", "x2^2", "x1*x2", "sin(x1)", "sin(x2)"];
const DEFAULTS = {dataset: "circle", problem: "classification", noise: 0, ratio: 0.5, seed: 0,
  features: ["x1", "x2"], hidden: [4, 2], activation: "tanh", lr: 0.03, batch: 10,
  regularization: "none", reg_rate: 0, optimizer: "sgd", init: "xavier", bias_init: 0, residual: false};
const EXTENT = 6, ORANGE = [245, 147, 34], BLUE = [8, 119, 189];
const pg = window.__pg = {cfg: null, sid: null, frame: null, data: null, frames: 0, history: [], deltas: []};
const $ = (id) => document.getElementById(id);

function color(v) { // v in [0, 1]: orange - white - blue
  const t = Math.abs(v - 0.5) * 2, c = v < 0.5 ? ORANGE : BLUE;
  return [255 + (c[0] - 255) * t, 255 + (c[1] - 255) * t, 255 + (c[2] - 255) * t];
}

// ------------------------------------------------------------ settings <-> URL
function cfgFromHash() {
  const cfg = JSON.parse(JSON.stringify(DEFAULTS)), q = new URLSearchParams(location.hash.slice(1));
  for (const [k, v] of q) {
    if (k === "features") cfg.features = v ? v.split(",") : [];
    else if (k === "hidden") cfg.hidden = v ? v.split(",").map(Number) : [];
    else if (k === "residual") cfg.residual = v === "true";
    else if (k in cfg) cfg[k] = typeof DEFAULTS[k] === "number" ? Number(v) : v;
  }
  $("show-test").checked = q.get("showTest") === "true";
  $("discretize").checked = q.get("discretize") === "true";
  return cfg;
}
function writeHash() {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(pg.cfg)) q.set(k, Array.isArray(v) ? v.join(",") : String(v));
  q.set("showTest", $("show-test").checked); q.set("discretize", $("discretize").checked);
  history.replaceState(null, "", "#" + q.toString());
}

// ------------------------------------------------------------ server calls
async function post(path, body) {
  const r = await fetch(path + "?token=" + TOKEN, {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
  const j = await r.json();
  if (!r.ok) throw Object.assign(new Error(j.error), {field: j.field});
  return j;
}
function clearErrors() { document.querySelectorAll(".err").forEach((e) => { e.textContent = ""; }); document.querySelectorAll("input.bad").forEach((e) => e.classList.remove("bad")); }
function fieldError(field, msg) {
  const e = $(field + "-err");
  if (e) { e.textContent = msg; const inp = $(field); if (inp) inp.classList.add("bad"); } else showMessage(msg);
}
function showMessage(msg, info) { $("message").textContent = msg || ""; $("message").className = info ? "info" : ""; }
async function act(action, extra) {
  try { clearErrors(); return await post("/api/action", Object.assign({sid: pg.sid, action}, extra || {})); }
  catch (e) { fieldError(e.field || "message", e.message); return null; }
}
async function applyConfig(cfg) {
  const r = await act("config", {config: cfg});
  if (r) {
    pg.cfg = cfg; pg.history = []; pg.deltas = []; writeHash(); syncControls();
    $("gradcheck-result").textContent = ""; $("backprop-result").textContent = "Click a point on the output (mode: backprop one sample).";
  }
  return r;
}

// ------------------------------------------------------------ page validation
function num(id, lo, hi, opts) {
  const raw = $(id).value.trim(), v = Number(raw);
  if (raw === "" || !Number.isFinite(v)) return fieldError(id, `"${raw}" is not a number`), null;
  if ((opts && opts.open && v <= lo) || v < lo || v > hi) return fieldError(id, `must be ${opts && opts.open ? ">" : ">="} ${lo} and <= ${hi}`), null;
  if (opts && opts.int && !Number.isInteger(v)) return fieldError(id, "must be a whole number"), null;
  return v;
}
function nTrain(cfg) {
  const n = cfg.dataset === "custom" && pg.data ? pg.data.train.length + pg.data.test.length : 500;
  return Math.max(1, Math.round(cfg.ratio * n));
}
function readControls() {
  clearErrors();
  const cfg = JSON.parse(JSON.stringify(pg.cfg));
  for (const k of ["activation", "regularization", "problem", "optimizer", "init"]) cfg[k] = $(k).value;
  cfg.residual = $("residual").checked;
  cfg.ratio = Number($("ratio").value) / 100; cfg.noise = Number($("noise").value) / 100;
  const lr = num("lr", 0, 10, {open: true}), rate = num("reg_rate", 0, 10), bias = num("bias_init", -1, 1);
  const seed = num("seed", 0, 2147483647, {int: true}), batch = num("batch", 1, nTrain(cfg), {int: true});
  if ([lr, rate, bias, seed, batch].includes(null)) return null;
  Object.assign(cfg, {lr, reg_rate: rate, bias_init: bias, seed, batch});
  return cfg;
}
async function onControlChange() { const cfg = readControls(); if (cfg) await applyConfig(cfg); }
function syncControls() {
  const c = pg.cfg;
  for (const k of ["activation", "regularization", "problem", "optimizer", "init"]) $(k).value = c[k];
  for (const k of ["lr", "reg_rate", "bias_init", "seed", "batch"]) $(k).value = c[k];
  $("residual").checked = c.residual;
  $("ratio").value = Math.round(c.ratio * 100); $("ratio-v").textContent = Math.round(c.ratio * 100);
  $("noise").value = Math.round(c.noise * 100); $("noise-v").textContent = Math.round(c.noise * 100);
  document.querySelectorAll("#datasets button").forEach((b) => b.classList.toggle("on", b.dataset.dataset === c.dataset));
  $("features").innerHTML = "";
  for (const f of FEATURES) {
    const l = document.createElement("label"), cb = document.createElement("input");
    cb.type = "checkbox"; cb.checked = c.features.includes(f); cb.dataset.feature = f;
    cb.onchange = () => {
      const feats = FEATURES.filter((g) => (g === f ? cb.checked : pg.cfg.features.includes(g)));
      if (!feats.length) { cb.checked = true; fieldError("features", "choose at least one input feature"); return; }
      applyConfig(Object.assign({}, pg.cfg, {features: feats}));
    };
    l.append(cb, " " + f); $("features").append(l);
  }
  $("n-layers").textContent = c.hidden.length;
  $("layer-buttons").innerHTML = "";
  c.hidden.forEach((w, i) => {
    const d = document.createElement("div"); d.className = "lb";
    const minus = document.createElement("button"), plus = document.createElement("button");
    minus.textContent = "\u2212"; plus.textContent = "+"; minus.className = "neuron-minus"; plus.className = "neuron-plus";
    minus.onclick = () => setWidth(i, w - 1); plus.onclick = () => setWidth(i, w + 1);
    d.append(minus, ` ${w} `, plus); $("layer-buttons").append(d);
  });
}
function setWidth(i, w) {
  if (w < 1 || w > 8) return fieldError("hidden", "a layer has 1 to 8 neurons");
  const hidden = pg.cfg.hidden.slice(); hidden[i] = w; applyConfig(Object.assign({}, pg.cfg, {hidden}));
}

// ------------------------------------------------------------ drawing
function heat(b64, n, discretize) {
  const bytes = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0)), img = new ImageData(n, n);
  for (let i = 0; i < n * n; i++) {
    let v = bytes[i] / 255; if (discretize) v = v >= 0.5 ? 1 : 0;
    const c = color(v); img.data.set([c[0], c[1], c[2], 255], 4 * i);
  }
  const cv = document.createElement("canvas"); cv.width = cv.height = n; cv.getContext("2d").putImageData(img, 0, 0);
  return cv;
}
const toPx = (x, size) => ((x + EXTENT) / (2 * EXTENT)) * size;
function drawOutput() {
  const cv = $("output"), g = cv.getContext("2d"), f = pg.frame, S = cv.width;
  g.clearRect(0, 0, S, S);
  if (f) { g.imageSmoothingEnabled = !$("discretize").checked; g.drawImage(heat(f.surface, 48, $("discretize").checked), 0, 0, S, S); }
  if (!pg.data) return;
  const reg = pg.data.task === "regression";
  const pts = (rows, stroke) => rows.forEach(([x1, x2, y]) => {
    const c = color(reg ? (y + 1) / 2 : y);
    g.beginPath(); g.arc(toPx(x1, S), S - toPx(x2, S), 3.5, 0, 7);
    g.fillStyle = `rgb(${c[0] * 0.8},${c[1] * 0.8},${c[2] * 0.8})`; g.fill();
    g.strokeStyle = stroke; g.lineWidth = 1; g.stroke();
  });
  pts(pg.data.train, "#fff");
  if ($("show-test").checked) pts(pg.data.test, "#000");
}
function featureMap(name) {
  const n = 16, img = new ImageData(n, n);
  const fn = {"x1": (a) => a / 6, "x2": (a, b) => b / 6, "x1^2": (a) => a * a / 18 - 1, "x2^2": (a, b) => b * b / 18 - 1,
    "x1*x2": (a, b) => a * b / 18, "sin(x1)": (a) => Math.sin(a), "sin(x2)": (a, b) => Math.sin(b)}[name];
  for (let r = 0; r < n; r++) for (let c = 0; c < n; c++) {
    const x1 = ((c + 0.5) / n) * 12 - 6, x2 = 6 - ((r + 0.5) / n) * 12;
    const col = color((Math.max(-1, Math.min(1, fn(x1, x2))) + 1) / 2);
    img.data.set([col[0], col[1], col[2], 255], 4 * (r * n + c));
  }
  const cv = document.createElement("canvas"); cv.width = cv.height = n; cv.getContext("2d").putImageData(img, 0, 0);
  return cv;
}
let edges = [];
function drawNetwork() {
  const cv = $("network"), g = cv.getContext("2d"), f = pg.frame;
  g.clearRect(0, 0, cv.width, cv.height);
  if (!f) return;
  const sizes = f.sizes, cols = sizes.length, box = 34, W = cv.width, H = cv.height;
  const x = (l) => 20 + (l * (W - 80)) / (cols - 1), y = (l, j) => 10 + j * ((H - 20) / Math.max(8, sizes[l])) + (l === cols - 1 ? (H - 20) / 2 - box : 0);
  edges = [];
  for (let l = 1; l < cols; l++) {
    const Wl = f.weights[l - 1].W;
    for (let j = 0; j < sizes[l]; j++) for (let i = 0; i < sizes[l - 1]; i++) {
      const w = Wl[j][i], x0 = x(l - 1) + box, y0 = y(l - 1, i) + box / 2, x1 = x(l), y1 = y(l, j) + box / 2;
      g.strokeStyle = w >= 0 ? "rgba(8,119,189,0.8)" : "rgba(245,147,34,0.8)";
      g.lineWidth = Math.min(6, 0.5 + Math.abs(w) * 2);
      g.beginPath(); g.moveTo(x0, y0); g.lineTo(x1, y1); g.stroke();
      edges.push({x0, y0, x1, y1, w, label: `W(${l})[${j},${i}] = ${w.toFixed(4)}`});
    }
  }
  g.imageSmoothingEnabled = true;
  pg.cfg.features.forEach((name, i) => { g.drawImage(featureMap(name), x(0), y(0, i), box, box); g.fillStyle = "#333"; g.font = "10px sans-serif"; g.fillText(name, x(0) - 2, y(0, i) + box + 9); });
  f.neurons.forEach((layer, li) => layer.forEach((b64, j) => {
    g.drawImage(heat(b64, 16, false), x(li + 1), y(li + 1, j), box, box);
    g.strokeStyle = "#555"; g.lineWidth = 1; g.strokeRect(x(li + 1), y(li + 1, j), box, box);
  }));
  f.skip.forEach((s, l) => { if (s) { g.fillStyle = "#183d4e"; g.font = "11px sans-serif"; g.fillText("+skip", x(l + 1), 8 + 2); } });
  g.drawImage(heat(f.surface, 48, false), x(cols - 1), y(cols - 1, 0), box, box);
}
function drawLoss() {
  const cv = $("loss-chart"), g = cv.getContext("2d"), h = pg.history;
  g.clearRect(0, 0, cv.width, cv.height);
  if (h.length < 2) return;
  const max = Math.max(...h.map((r) => Math.max(r[1] || 0, r[2] || 0)), 1e-9);
  for (const [k, col] of [[2, "#000"], [1, "#888"]]) {
    g.strokeStyle = col; g.beginPath();
    h.forEach((r, i) => { const px = (i / (h.length - 1)) * cv.width, py = cv.height - ((r[k] || 0) / max) * (cv.height - 4); i ? g.lineTo(px, py) : g.moveTo(px, py); });
    g.stroke();
  }
}
function drawDeltas() {
  const cv = $("delta-chart"), g = cv.getContext("2d"), d = pg.deltas;
  g.clearRect(0, 0, cv.width, cv.height);
  if (!d.length) return;
  const L = d[d.length - 1].delta.length, vals = d.flatMap((r) => r.delta.concat(r.grad_w)).filter((v) => v > 0);
  if (!vals.length) return;
  const lo = Math.floor(Math.log10(Math.min(...vals))), hi = Math.ceil(Math.log10(Math.max(...vals))) + (1e-12);
  const py = (v) => cv.height - 12 - ((Math.log10(Math.max(v, 1e-300)) - lo) / Math.max(hi - lo, 1)) * (cv.height - 24);
  g.fillStyle = "#888"; g.font = "10px sans-serif";
  for (let e = lo; e <= hi; e++) { g.fillText("1e" + e, 2, py(10 ** e)); g.strokeStyle = "#eee"; g.beginPath(); g.moveTo(30, py(10 ** e)); g.lineTo(cv.width, py(10 ** e)); g.stroke(); }
  for (let l = 0; l < L; l++) {
    const hue = (l * 300) / Math.max(L - 1, 1);
    for (const [key, dash] of [["delta", []], ["grad_w", [4, 3]]]) {
      g.strokeStyle = `hsl(${hue},70%,40%)`; g.setLineDash(dash); g.beginPath();
      d.forEach((r, i) => { const px = 30 + (i / Math.max(d.length - 1, 1)) * (cv.width - 40); i ? g.lineTo(px, py(r[key][l])) : g.moveTo(px, py(r[key][l])); });
      g.stroke();
    }
  }
  g.setLineDash([]);
  const last = d[d.length - 1];
  // built with the DOM: the page's CSP (default-src 'self') blocks inline style attributes
  $("delta-values").replaceChildren(...last.delta.flatMap((v, l) => {
    const span = document.createElement("span");
    span.style.color = `hsl(${(l * 300) / Math.max(L - 1, 1)},70%,40%)`;
    span.textContent = `layer ${l + 1}: ||\u03b4|| ${v.toExponential(2)}, ||dL/dW|| ${last.grad_w[l].toExponential(2)}`;
    return l ? [document.createElement("br"), span] : [span];
  }));
}
let pending = false;
function render() {
  pending = false;
  const f = pg.frame;
  if (f) {
    $("epoch").textContent = String(f.epoch).padStart(6, "0");
    $("train-loss").textContent = f.train_loss == null ? "NaN" : f.train_loss.toFixed(3);
    $("test-loss").textContent = f.test_loss == null ? "NaN" : f.test_loss.toFixed(3);
    $("play").innerHTML = f.playing ? "<b>||</b>" : "&#x25B6;";
    if (f.message) showMessage(f.message);
  }
  drawOutput(); drawNetwork(); drawLoss(); drawDeltas();
}
function schedule() { if (!pending) { pending = true; requestAnimationFrame(render); } }

// ------------------------------------------------------------ stream
function connect() {
  const es = new EventSource(`/api/stream?sid=${pg.sid}&token=${TOKEN}`);
  es.onmessage = (ev) => {
    const m = JSON.parse(ev.data);
    if (m.type === "data") { pg.data = m; pg.history = m.history; }
    else if (m.type === "frame") {
      pg.frame = m; pg.frames++;
      const h = pg.history, last = h[h.length - 1];
      if (!last || last[0] !== m.epoch) h.push([m.epoch, m.train_loss, m.test_loss]);
      if (h.length > 1000) pg.history = h.filter((_, i) => i % 2 === 0);
      if (m.delta.length) { pg.deltas.push({delta: m.delta, grad_w: m.grad_w}); if (pg.deltas.length > 300) pg.deltas.shift(); }
    }
    schedule();
  };
  es.onerror = () => { if (es.readyState === EventSource.CLOSED) showMessage("lost the connection to the playground server: reload the page"); };
  pg.es = es;
}

// ------------------------------------------------------------ wiring
function wire() {
  $("play").onclick = () => act(pg.frame && pg.frame.playing ? "pause" : "play").then(() => showMessage(""));
  $("step").onclick = () => act("step");
  $("reset").onclick = () => { pg.history = []; pg.deltas = []; act("reset"); };
  $("regenerate").onclick = async () => { const r = await act("regenerate"); if (r) { pg.cfg.seed = (pg.cfg.seed + 1) % 2147483647; syncControls(); writeHash(); } };
  for (const id of ["lr", "reg_rate", "bias_init", "seed", "batch"]) $(id).onchange = onControlChange;
  for (const id of ["activation", "regularization", "optimizer", "init", "residual"]) $(id).onchange = onControlChange;
  $("problem").onchange = () => { // as TF Playground: the problem type picks a matching dataset
    const cfg = readControls(); if (!cfg) return;
    const regression = ["plane", "multigauss"].includes(cfg.dataset);
    if (cfg.problem === "regression" && !regression && cfg.dataset !== "custom") cfg.dataset = "plane";
    if (cfg.problem === "classification" && regression) cfg.dataset = "circle";
    applyConfig(cfg);
  };
  $("ratio").oninput = () => { $("ratio-v").textContent = $("ratio").value; };
  $("noise").oninput = () => { $("noise-v").textContent = $("noise").value; };
  $("ratio").onchange = onControlChange; $("noise").onchange = onControlChange;
  document.querySelectorAll("#datasets button").forEach((b) => { b.onclick = () => {
    const cfg = readControls(); if (!cfg) return;
    cfg.dataset = b.dataset.dataset;
    if (cfg.dataset === "plane" || cfg.dataset === "multigauss") cfg.problem = "regression";
    else if (cfg.dataset !== "custom") cfg.problem = "classification";
    if (cfg.dataset === "custom") $("click-mode").value = "draw";
    applyConfig(cfg);
  }; });
  $("add-layer").onclick = () => { if (pg.cfg.hidden.length >= 6) return fieldError("hidden", "at most 6 hidden layers"); applyConfig(Object.assign({}, pg.cfg, {hidden: pg.cfg.hidden.concat([2])})); };
  $("remove-layer").onclick = () => { if (!pg.cfg.hidden.length) return; applyConfig(Object.assign({}, pg.cfg, {hidden: pg.cfg.hidden.slice(0, -1)})); };
  $("show-test").onchange = () => { writeHash(); schedule(); };
  $("discretize").onchange = () => { writeHash(); schedule(); };
  $("output").onclick = async (ev) => {
    const r = ev.target.getBoundingClientRect(), S = r.width;
    const x1 = ((ev.clientX - r.left) / S) * 12 - 6, x2 = 6 - ((ev.clientY - r.top) / S) * 12;
    if ($("click-mode").value === "draw") {
      const problem = $("problem").value, label = problem === "regression" ? Number($("draw-value").value) : Number($("draw-label").value);
      if (problem === "regression" && !(label >= -1 && label <= 1)) return fieldError("message", "a drawn value lies in [-1, 1]");
      const res = await act("add_point", {x1, x2, label, problem});
      if (res) { pg.cfg.dataset = "custom"; pg.cfg.problem = problem; syncControls(); writeHash(); }
    } else {
      const res = await act("backprop", {x1, x2}); if (res) showBackprop(res.result);
    }
  };
  $("clear-points").onclick = async () => { const r = await act("clear_points"); if (r && pg.cfg.dataset === "custom") { pg.cfg.dataset = "circle"; syncControls(); writeHash(); } };
  $("csv").onchange = async () => {
    const file = $("csv").files[0]; if (!file) return;
    if (file.size > 200000) return fieldError("csv", "the CSV file is larger than 200 kB");
    const res = await act("load_csv", {text: await file.text(), problem: $("problem").value});
    if (res) { pg.cfg.dataset = "custom"; pg.cfg.problem = $("problem").value; syncControls(); writeHash(); }
  };
  $("gradcheck").onclick = async () => {
    $("gradcheck-result").textContent = "checking...";
    const r = await act("gradcheck"); if (!r) return;
    const g = r.result;
    $("gradcheck-result").innerHTML = `${g.n_parameters} parameters, ${g.n_points} points, float64; max relative error:<br>` +
      `reverse mode vs central differences <b class="rel">${g.rev_vs_central.toExponential(2)}</b><br>` +
      `forward mode vs central differences <b>${g.fwd_vs_central.toExponential(2)}</b><br>` +
      `reverse vs forward mode <b>${g.rev_vs_fwd.toExponential(2)}</b><br>numeric.gradcheck (random directions, rtol 1e-6): ${g.gradcheck ? "passed" : "failed"}`;
  };
  $("export").onclick = async () => {
    const r = await act("export", {name: $("export-name").value});
    if (r) { $("export-result").textContent = `written to ${r.result.directory}: try chainrule evaluate ${r.result.directory}`; $("snippet").textContent = r.result.snippet; }
  };
  $("show-snippet").onclick = async () => { const r = await act("snippet"); if (r) $("snippet").textContent = r.result.snippet; };
  const tip = $("tooltip");
  $("network").onmousemove = (ev) => {
    const r = ev.target.getBoundingClientRect(), px = ev.clientX - r.left, py = ev.clientY - r.top;
    let best = null, bd = 4;
    for (const e of edges) {
      const dx = e.x1 - e.x0, dy = e.y1 - e.y0, t = Math.max(0, Math.min(1, ((px - e.x0) * dx + (py - e.y0) * dy) / (dx * dx + dy * dy)));
      const d = Math.hypot(px - e.x0 - t * dx, py - e.y0 - t * dy); if (d < bd) { bd = d; best = e; }
    }
    tip.style.display = best ? "block" : "none";
    if (best) { tip.textContent = best.label; tip.style.left = px + 10 + "px"; tip.style.top = py + 10 + "px"; }
  };
  window.addEventListener("hashchange", () => { // a pasted link: apply its settings
    const cfg = cfgFromHash();
    if (JSON.stringify(cfg) !== JSON.stringify(pg.cfg)) applyConfig(cfg).then((r) => { if (!r) { syncControls(); writeHash(); } });
  });
  // a browser holds at most 6 connections to the server and each stream keeps one:
  // a hidden tab closes its stream (training pauses) so that other tabs can work
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden" && pg.es) {
      pg.es.close(); pg.es = null;
      post("/api/action", {sid: pg.sid, action: "hide"}).catch(() => {});
    } else if (document.visibilityState === "visible" && !pg.es && pg.sid) connect();
  });
  window.addEventListener("pagehide", () => navigator.sendBeacon(`/api/action?token=${TOKEN}`, new Blob([JSON.stringify({sid: pg.sid, action: "close"})], {type: "application/json"})));
}
function fmt(v) { return "[" + v.map((x) => x.toFixed(3)).join(", ") + "]"; }
function showBackprop(b) {
  let html = `point (${b.point.map((v) => v.toFixed(2)).join(", ")}), label ${b.label}, loss ${b.loss.toFixed(4)}; a<sup>(0)</sup> = ${fmt(b.input)}<table class="bp"><tr><th>l</th><th>z<sup>(l)</sup> = W a<sup>(l-1)</sup> + b</th><th>a<sup>(l)</sup> = f(z)</th><th>&delta;<sup>(l)</sup> = f'(z) &#8857; W<sup>(l+1)T</sup>&delta;<sup>(l+1)</sup></th><th>&delta; by autodiff</th></tr>`;
  for (const r of b.layers) html += `<tr><td>${r.layer}${r.skip ? " +skip" : ""}</td><td>${fmt(r.z)}</td><td>${fmt(r.a)}</td><td>${fmt(r.delta)}</td><td>${fmt(r.delta_autodiff)}</td></tr>`;
  $("backprop-result").innerHTML = html + `</table>recursion vs autodiff: max difference ${b.max_difference.toExponential(2)}`;
}

async function start() {
  wire();
  let cfg = cfgFromHash(), r;
  try { r = await post("/api/session", {config: cfg}); }
  catch (e) { showMessage(`the link's settings were refused (${e.message}); using the defaults`); cfg = JSON.parse(JSON.stringify(DEFAULTS)); r = await post("/api/session", {config: cfg}); }
  pg.sid = r.sid; pg.cfg = r.config; syncControls(); writeHash();
  if (document.visibilityState === "hidden") post("/api/action", {sid: pg.sid, action: "hide"}).catch(() => {});
  else connect();  // a tab opened in the background streams once it is shown
}
start();
