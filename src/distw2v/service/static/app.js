// The distw2v service page: plain JavaScript, no libraries, no build step.
// Every bit of server data is put in the page with textContent (never innerHTML): job names,
// log lines and vocabulary words come from users and corpora.
"use strict";

const TOKEN_KEY = "distw2v.token";
const POLL_MS = 1500;
const SVG_NS = "http://www.w3.org/2000/svg";

const state = {
  token: sessionStorage.getItem(TOKEN_KEY),
  timer: null,
  busy: false,
  jobId: null,
  job: null,
  explorerFor: null,
  jobsSeen: null, // the job list as last drawn
  form: null, // [{path, kind, def, input, error}]
};

const $ = (id) => document.getElementById(id);

class ApiError extends Error {
  constructor(status, detail, errors) {
    super(detail);
    this.status = status;
    this.errors = errors || [];
  }
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

// ---- talking to the API ------------------------------------------------------------------

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  let body = options.body;
  if (options.json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(options.json);
  }
  let response;
  try {
    response = await fetch(path, { method: options.method || "GET", headers, body });
  } catch (err) {
    throw new ApiError(0, "The server cannot be reached; is it still running?");
  }
  if (options.raw && response.ok) return response;
  let data = null;
  try {
    data = await response.json();
  } catch (err) {
    data = null;
  }
  if (!response.ok) {
    const detail = data && typeof data.detail === "string" ? data.detail
      : `The server answered ${response.status}.`;
    const error = new ApiError(response.status, detail, data && data.errors);
    if (response.status === 401 && !options.signingIn) signOut("Your token is no longer accepted; sign in again.");
    throw error;
  }
  return data;
}

// ---- formatting -------------------------------------------------------------------------

function fmtRate(value) {
  if (value === null || value === undefined) return "–";
  if (value >= 1e6) return `${(value / 1e6).toFixed(2)}M`;
  if (value >= 1e3) return `${(value / 1e3).toFixed(1)}k`;
  return String(Math.round(value));
}

function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
}

function fmtTime(iso) {
  if (!iso) return "–";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

function fmtValue(value) {
  if (value === null || value === undefined) return "–";
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : String(+value.toPrecision(4));
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

function stateBadge(name) {
  return el("span", { class: `state state-${name}` }, name);
}

// ---- views ------------------------------------------------------------------------------

function show(view) {
  for (const id of ["signin-view", "jobs-view", "job-view"]) $(id).hidden = id !== view;
  $("signout").hidden = view === "signin-view";
}

function notice(text) {
  $("notice").textContent = text || "";
  $("notice").hidden = !text;
}

function stopPolling() {
  if (state.timer !== null) clearInterval(state.timer);
  state.timer = null;
}

function poll(fn) {
  stopPolling();
  const tick = async () => {
    if (state.busy) return; // the last round is still under way
    state.busy = true;
    try {
      await fn();
    } catch (err) {
      if (err instanceof ApiError && err.status !== 401) notice(err.message);
    } finally {
      state.busy = false;
    }
  };
  tick();
  state.timer = setInterval(tick, POLL_MS);
}

function signOut(message) {
  state.token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  stopPolling();
  show("signin-view");
  $("signin-error").textContent = message || "";
}

async function route() {
  stopPolling();
  notice("");
  if (!state.token) {
    show("signin-view");
    return;
  }
  const match = location.hash.match(/^#\/jobs\/([^/]+)$/);
  if (match) await openJob(decodeURIComponent(match[1]));
  else await openJobs();
}

// ---- sign in ----------------------------------------------------------------------------

async function signIn(event) {
  event.preventDefault();
  const token = $("token").value.trim();
  $("signin-error").textContent = "";
  if (!token) {
    $("signin-error").textContent = "Enter a token.";
    return;
  }
  state.token = token;
  try {
    await api("/v1/jobs?limit=1", { signingIn: true });
  } catch (err) {
    state.token = null;
    $("signin-error").textContent = err.status === 401
      ? "The server did not accept this token; check it and try again."
      : err.message;
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  $("token").value = "";
  await route();
}

// ---- the job list -----------------------------------------------------------------------

async function openJobs() {
  show("jobs-view");
  state.jobsSeen = null;
  if (state.form === null) await buildForm();
  poll(refreshJobs);
}

async function refreshJobs() {
  const data = await api("/v1/jobs?limit=100");
  const seen = JSON.stringify(data);
  if (seen === state.jobsSeen) return;
  state.jobsSeen = seen;
  const body = $("jobs").querySelector("tbody");
  const rows = data.jobs.map((job) => {
    const active = job.state === "running" || job.state === "queued";
    const bar = el("progress", { max: "1", value: String(job.progress) });
    return el("tr", { "data-id": job.id, "data-state": job.state },
      el("td", {}, el("a", { href: `#/jobs/${encodeURIComponent(job.id)}` }, job.name || "(no name)")),
      el("td", {}, el("code", {}, job.id)),
      el("td", { class: "job-state" }, stateBadge(job.state)),
      el("td", {}, job.stage || "–"),
      el("td", {}, bar, ` ${Math.round(job.progress * 100)}%`),
      el("td", { class: "num" }, active ? fmtRate(job.words_per_second) : "–"),
      el("td", { class: "num" }, active ? fmtDuration(job.eta_seconds) : "–"),
      el("td", {}, fmtTime(job.created_at)));
  });
  body.replaceChildren(...rows);
  $("jobs-empty").hidden = data.total > 0;
}

// ---- the submit form, generated from the API's own OpenAPI document -----------------------

function resolve(doc, schema) {
  let node = schema;
  while (node && node.$ref) {
    const parts = node.$ref.replace(/^#\//, "").split("/");
    node = parts.reduce((obj, key) => obj[key], doc);
  }
  return node;
}

function describe(prop) {
  // An optional setting is anyOf [its type, null]; the bounds sit on the typed branch.
  const branches = prop.anyOf || [prop];
  const typed = branches.find((b) => b.type && b.type !== "null") || prop;
  const nullable = branches.some((b) => b.type === "null");
  let kind = typed.type;
  let choices = null;
  if (typed.enum) { kind = "choice"; choices = typed.enum; }
  if (typed.const !== undefined) { kind = "choice"; choices = [typed.const]; }
  return { kind, choices, nullable, typed, def: prop.default };
}

function field(path, name, prop, extra = {}) {
  const info = describe(prop);
  const id = `f-${path.replace(/\./g, "-")}`;
  let input;
  if (extra.multiline) {
    input = el("textarea", { id, name: path, rows: "3", spellcheck: "false",
      placeholder: "/data/corpus/*.txt.gz (one source a line)" });
  } else if (info.kind === "choice") {
    input = el("select", { id, name: path }, ...info.choices.map((c) => el("option", { value: c }, c)));
    if (info.def !== undefined && info.def !== null) input.value = info.def;
  } else if (info.kind === "boolean") {
    input = el("input", { id, name: path, type: "checkbox" });
    input.checked = info.def === true;
  } else if (info.kind === "integer" || info.kind === "number") {
    input = el("input", { id, name: path, type: "number", step: info.kind === "integer" ? "1" : "any" });
    const t = info.typed;
    if (t.minimum !== undefined) input.min = t.minimum;
    if (t.maximum !== undefined) input.max = t.maximum;
    if (info.def !== undefined && info.def !== null) input.value = info.def;
    else input.placeholder = "default";
  } else {
    input = el("input", { id, name: path, type: "text", spellcheck: "false" });
    if (prop.maxLength) input.maxLength = prop.maxLength;
    if (typeof info.def === "string") input.value = info.def;
  }
  const hints = [];
  if (prop.description) hints.push(prop.description);
  const t = info.typed;
  const low = t.minimum !== undefined ? `${t.minimum}` : t.exclusiveMinimum !== undefined ? `above ${t.exclusiveMinimum}` : null;
  if (low !== null || t.maximum !== undefined) hints.push(`range ${low ?? "…"} to ${t.maximum ?? "…"}`);
  if (info.def === undefined || info.def === null) {
    if (info.nullable) hints.push("empty: the server's default");
  } else if (info.def !== "" && !extra.multiline) {
    hints.push(`default ${info.def}`);
  }
  const error = el("span", { class: "field-error" });
  const label = el("label", { for: id }, name);
  const wrap = el("div", { class: `field${info.kind === "boolean" ? " check" : ""}${extra.multiline ? " wide" : ""}`,
    "data-field": path });
  if (info.kind === "boolean") wrap.append(input, label);
  else wrap.append(label, input);
  wrap.append(el("span", { class: "hint" }, hints.join("; ")), error);
  state.form.push({ path, kind: extra.multiline ? "lines" : info.kind, def: info.def, input, error });
  return wrap;
}

async function buildForm() {
  const form = $("submit-form");
  let doc;
  try {
    const response = await fetch("/openapi.json");
    doc = await response.json();
  } catch (err) {
    $("form-loading").textContent = "The settings schema could not be loaded.";
    return;
  }
  const op = doc.paths["/v1/jobs"].post;
  const request = resolve(doc, op.requestBody.content["application/json"].schema);
  state.form = [];
  const top = el("div", { class: "fields" });
  const sections = [];
  for (const [name, raw] of Object.entries(request.properties)) {
    const prop = resolve(doc, raw);
    if (prop.type === "object" && prop.properties) {
      const set = el("fieldset", {}, el("legend", {}, `${name}: ${raw.description || prop.description || ""}`));
      const grid = el("div", { class: "fields" });
      for (const [key, sub] of Object.entries(prop.properties)) grid.append(field(`${name}.${key}`, key, sub));
      set.append(grid);
      sections.push(set);
    } else if (prop.type === "array") {
      top.append(field(name, name, prop, { multiline: true }));
    } else {
      top.append(field(name, name, prop));
    }
  }
  const submit = el("button", { type: "submit", id: "submit-button" }, "Submit job");
  form.replaceChildren(top, ...sections, submit);
}

function formValue(entry) {
  const { input, kind } = entry;
  if (kind === "lines") return input.value.split("\n").map((s) => s.trim()).filter(Boolean);
  if (kind === "boolean") return input.checked;
  const text = input.value.trim();
  if (text === "") return undefined; // the server's default
  if (kind === "integer" || kind === "number") {
    const number = Number(text);
    return Number.isFinite(number) ? number : text; // the server names a bad value
  }
  return text;
}

function clearFormErrors() {
  $("submit-error").textContent = "";
  for (const entry of state.form || []) {
    entry.error.textContent = "";
    entry.input.classList.remove("invalid");
  }
}

async function submitJob(event) {
  event.preventDefault();
  if (!state.form) return;
  clearFormErrors();
  const body = {};
  for (const entry of state.form) {
    const value = formValue(entry);
    if (value === undefined || (entry.kind !== "lines" && value === entry.def)) continue;
    const [section, key] = entry.path.split(".");
    if (key === undefined) body[section] = value;
    else (body[section] = body[section] || {})[key] = value;
  }
  const button = $("submit-button");
  button.disabled = true;
  try {
    const job = await api("/v1/jobs", { method: "POST", json: body });
    location.hash = `#/jobs/${encodeURIComponent(job.id)}`;
  } catch (err) {
    $("submit-error").textContent = err.message;
    for (const problem of err.errors || []) {
      const entry = state.form.find((e) => e.path === problem.field || problem.field.startsWith(`${e.path}.`));
      if (entry) {
        entry.error.textContent = problem.message;
        entry.input.classList.add("invalid");
      }
    }
    if (!err.errors || !err.errors.length) {
      // a 403/422 about a source names it as "sources.N" or in its sentence
      const sources = state.form.find((e) => e.path === "sources");
      if (sources && /source|path|allowed|dataset/i.test(err.message)) sources.input.classList.add("invalid");
    }
  } finally {
    button.disabled = false;
  }
}

// ---- a job's page -----------------------------------------------------------------------

async function openJob(jobId) {
  show("job-view");
  if (state.jobId !== jobId) {
    state.jobId = jobId;
    state.explorerFor = null;
    state.job = null;
    for (const id of ["job-title", "job-state", "job-log", "job-error", "model-info",
      "projection-note", "download-status", "explorer-error"]) $(id).textContent = "";
    for (const id of ["neighbours", "analogies", "projection", "plot", "job-status"]) $(id).replaceChildren();
    $("downloads").hidden = true;
    $("explorer").hidden = true;
  }
  poll(refreshJob);
}

function factsTable(id, rows) {
  const body = $(id).querySelector("tbody");
  body.replaceChildren(...rows.map(([key, value]) => el("tr", {}, el("td", {}, key), el("td", {}, fmtValue(value)))));
}

function flatten(prefix, value, out) {
  if (value && typeof value === "object" && !Array.isArray(value)) {
    for (const [key, sub] of Object.entries(value)) flatten(prefix ? `${prefix}.${key}` : key, sub, out);
  } else {
    out.push([prefix, value]);
  }
  return out;
}

// {kind: [{name, figures…}]}: one row per benchmark file, its scalar figures in a line
function evaluationRows(evaluation) {
  const rows = [];
  for (const [kind, results] of Object.entries(evaluation || {})) {
    for (const result of Array.isArray(results) ? results : [results]) {
      if (!result || typeof result !== "object") {
        rows.push([kind, result]);
        continue;
      }
      const figures = Object.entries(result)
        .filter(([key, value]) => key !== "name" && (value === null || typeof value !== "object"))
        .map(([key, value]) => `${key} ${fmtValue(value)}`).join(" · ");
      rows.push([result.name && result.name !== kind ? `${kind}: ${result.name}` : kind, figures]);
    }
  }
  return rows;
}

async function refreshJob() {
  const jobId = state.jobId;
  const before = state.job;
  const job = await api(`/v1/jobs/${encodeURIComponent(jobId)}`);
  if (jobId !== state.jobId) return;
  // unchanged since the last round: leave the page alone (a selection in it stays put)
  if (before && JSON.stringify(before) === JSON.stringify(job)) return;
  state.job = job;
  const active = job.state === "queued" || job.state === "running";
  $("job-title").textContent = `${job.name || "(no name)"} · ${job.id}`;
  $("job-state").replaceWith(Object.assign(stateBadge(job.state), { id: "job-state" }));
  $("job-error").textContent = job.error || "";
  $("cancel-job").hidden = !active;
  $("retry-job").hidden = !(job.state === "failed" || job.state === "cancelled");
  const status = [
    ["state", job.state], ["stage", job.stage || "–"],
    ["progress", `${Math.round(job.progress * 100)}%`],
    ["words/s", active ? fmtRate(job.words_per_second) : "–"],
    ["ETA", active ? fmtDuration(job.eta_seconds) : "–"],
    ["epoch", job.epoch === null ? "–" : `${job.epoch} of ${job.epochs}`],
    ["attempt", job.attempts], ["created", fmtTime(job.created_at)],
    ["started", fmtTime(job.started_at)], ["finished", fmtTime(job.finished_at)],
  ];
  $("job-status").replaceChildren(...status.flatMap(([k, v]) => [el("dt", {}, k), el("dd", { "data-key": k }, v)]));
  factsTable("job-settings", [["engine", job.engine], ["format", job.format],
    ...job.sources.map((s, i) => [`sources.${i}`, s]),
    ...flatten("vocab", job.vocab, []), ...flatten("train", job.train, [])]);
  const evaluation = evaluationRows(job.evaluation);
  factsTable("job-evaluation", evaluation);
  $("no-evaluation").hidden = evaluation.length > 0;
  factsTable("job-summary", job.summary ? flatten("", job.summary, []) : []);
  // history and log: every round while the job is active, once more when it has ended
  const changed = !before || before.state !== job.state || before.attempts !== job.attempts;
  if (active || changed) {
    const [history, log] = await Promise.all([
      api(`/v1/jobs/${encodeURIComponent(jobId)}/history`),
      api(`/v1/jobs/${encodeURIComponent(jobId)}/log?tail=200`),
    ]);
    drawPlot(history.samples);
    const pre = $("job-log");
    const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.textContent = (log.truncated ? "…\n" : "") + log.lines.join("\n");
    if (atEnd) pre.scrollTop = pre.scrollHeight;
  }
  const done = job.state === "succeeded";
  $("downloads").hidden = !done;
  $("explorer").hidden = !done;
  if (done && state.explorerFor !== job.id) {
    state.explorerFor = job.id;
    await openExplorer(job.id);
  }
}

async function cancelJob() {
  try {
    await api(`/v1/jobs/${encodeURIComponent(state.jobId)}`, { method: "DELETE" });
  } catch (err) {
    $("job-error").textContent = err.message;
  }
}

async function retryJob() {
  try {
    await api(`/v1/jobs/${encodeURIComponent(state.jobId)}/retry`, { method: "POST" });
    state.explorerFor = null;
    poll(refreshJob);
  } catch (err) {
    $("job-error").textContent = err.message;
  }
}

// ---- plots, drawn as SVG ----------------------------------------------------------------

function niceMax(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (value <= step * power) return step * power;
  return 10 * power;
}

function drawPlot(samples) {
  const plot = $("plot");
  const W = 640, H = 260, L = 60, R = 70, T = 24, B = 34;
  const points = samples.filter((s) => s.stage === "training");
  const nodes = [];
  if (points.length < 2) {
    nodes.push(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle" },
      samples.length ? `stage: ${samples[samples.length - 1].stage}; training has not begun` : "no progress recorded yet"));
    plot.replaceChildren(...nodes);
    return;
  }
  const t0 = points[0].t, t1 = points[points.length - 1].t;
  const span = Math.max(t1 - t0, 1e-9);
  const maxRate = niceMax(Math.max(...points.map((p) => p.words_per_second || 0)));
  const maxLr = niceMax(Math.max(...points.map((p) => p.learning_rate || 0)));
  // the loss, once training reports it, takes the right axis; the rate is then drawn to its
  // own scale (it is a straight line the settings fix: its shape is what it says)
  const hasLoss = points.some((p) => p.loss !== null && p.loss !== undefined);
  const maxLoss = niceMax(Math.max(...points.map((p) => p.loss || 0)));
  const yLoss = (v) => H - B - (v / maxLoss) * (H - T - B);
  const x = (t) => L + ((t - t0) / span) * (W - L - R);
  const yRate = (v) => H - B - (v / maxRate) * (H - T - B);
  const yLr = (v) => H - B - (v / maxLr) * (H - T - B);
  nodes.push(svg("line", { class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B }));
  nodes.push(svg("line", { class: "axis", x1: L, y1: T, x2: L, y2: H - B }));
  nodes.push(svg("line", { class: "axis", x1: W - R, y1: T, x2: W - R, y2: H - B }));
  for (const f of [0, 0.5, 1]) {
    nodes.push(svg("text", { x: L - 6, y: yRate(maxRate * f) + 4, "text-anchor": "end" }, fmtRate(maxRate * f)));
    const right = hasLoss ? maxLoss : maxLr;
    nodes.push(svg("text", { x: W - R + 6, y: yLr(maxLr * f) + 4 }, +(right * f).toPrecision(3)));
    nodes.push(svg("text", { x: x(t0 + span * f), y: H - B + 16, "text-anchor": "middle" }, fmtDuration(t0 + span * f)));
  }
  const line = (key, y) => points.filter((p) => p[key] !== null && p[key] !== undefined)
    .map((p) => `${x(p.t).toFixed(1)},${y(p[key]).toFixed(1)}`).join(" ");
  nodes.push(svg("polyline", { class: "wps", points: line("words_per_second", yRate) }));
  nodes.push(svg("polyline", { class: "lr", points: line("learning_rate", yLr) }));
  nodes.push(svg("rect", { class: "legend-wps", x: L + 8, y: 8, width: 12, height: 4 }));
  nodes.push(svg("text", { x: L + 24, y: 14 }, "words/s (left)"));
  nodes.push(svg("rect", { class: "legend-lr", x: L + 130, y: 8, width: 12, height: 4 }));
  nodes.push(svg("text", { x: L + 146, y: 14 }, hasLoss ? "learning rate" : "learning rate (right)"));
  if (hasLoss) {
    nodes.push(svg("polyline", { class: "loss", points: line("loss", yLoss) }));
    nodes.push(svg("rect", { class: "legend-loss", x: L + 240, y: 8, width: 12, height: 4 }));
    nodes.push(svg("text", { x: L + 256, y: 14 }, "loss a pair (right)"));
  }
  plot.replaceChildren(...nodes);
}

// ---- the model explorer -----------------------------------------------------------------

async function openExplorer(jobId) {
  try {
    const info = await api(`/v1/models/${encodeURIComponent(jobId)}`);
    $("model-info").textContent = `${info.words} words, ${info.dim} dimensions.`;
    await drawProjection([], null);
  } catch (err) {
    $("explorer-error").textContent = err.message;
  }
}

function resultList(id, items) {
  $(id).replaceChildren(...items.map((item) =>
    el("li", { "data-word": item.word }, el("span", { class: "word" }, item.word),
      el("span", { class: "score" }, item.score.toFixed(3)))));
}

async function findNeighbours(event) {
  event.preventDefault();
  $("explorer-error").textContent = "";
  const word = $("neighbour-word").value.trim();
  if (!word) return;
  const jobId = state.jobId;
  try {
    const data = await api(`/v1/models/${encodeURIComponent(jobId)}/similar?` +
      new URLSearchParams({ word, topn: "10" }));
    resultList("neighbours", data.similar);
    await drawProjection(data.similar.map((s) => s.word), word);
  } catch (err) {
    $("neighbours").replaceChildren();
    $("explorer-error").textContent = err.message;
  }
}

async function solveAnalogy(event) {
  event.preventDefault();
  $("explorer-error").textContent = "";
  const [a, b, c] = ["analogy-a", "analogy-b", "analogy-c"].map((id) => $(id).value.trim());
  const params = new URLSearchParams([["positive", b], ["positive", c], ["negative", a], ["topn", "5"]]);
  try {
    const data = await api(`/v1/models/${encodeURIComponent(state.jobId)}/analogy?${params}`);
    resultList("analogies", data.similar);
  } catch (err) {
    $("analogies").replaceChildren();
    $("explorer-error").textContent = err.message;
  }
}

async function drawProjection(neighbours, query) {
  const n = Math.min(1000, Math.max(1, parseInt($("projection-n").value, 10) || 300));
  const params = new URLSearchParams({ n: String(n) });
  for (const word of query ? [query, ...neighbours] : []) params.append("include", word);
  const data = await api(`/v1/models/${encodeURIComponent(state.jobId)}/projection?${params}`);
  const W = 640, H = 480, P = 24;
  const xs = data.words.map((p) => p.x), ys = data.words.map((p) => p.y);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const sx = (v) => P + ((v - x0) / ((x1 - x0) || 1)) * (W - 2 * P);
  const sy = (v) => H - P - ((v - y0) / ((y1 - y0) || 1)) * (H - 2 * P);
  const near = new Set(neighbours);
  const dots = [], labels = [];
  for (const p of data.words) {
    const kind = p.word === query ? "query" : near.has(p.word) ? "neighbour" : "";
    const dot = svg("circle", { cx: sx(p.x).toFixed(1), cy: sy(p.y).toFixed(1), r: kind ? 5 : 3,
      "data-word": p.word, class: kind });
    dot.append(svg("title", {}, `${p.word} (rank ${p.rank + 1})`));
    // highlighted points last, so they are drawn on top
    (kind ? labels : dots).push(dot);
    if (kind) labels.push(svg("text", { class: "label", x: (sx(p.x) + 7).toFixed(1), y: (sy(p.y) + 4).toFixed(1) }, p.word));
    else if (p.rank < 15) dots.push(svg("text", { class: "label-top", x: (sx(p.x) + 5).toFixed(1), y: (sy(p.y) + 3).toFixed(1) }, p.word));
  }
  $("projection").replaceChildren(...dots, ...labels);
  const shown = data.words.filter((p) => p.top).length;
  const [e1, e2] = data.explained_variance.map((v) => `${(v * 100).toFixed(1)}%`);
  $("projection-note").textContent = `${shown} most frequent words on the first two principal axes ` +
    `(${e1} and ${e2} of their variance)` + (query ? `; ${query} and its neighbours highlighted.` : ".");
}

async function download(event) {
  const format = event.currentTarget.dataset.format;
  const status = $("download-status");
  status.textContent = `downloading ${format}…`;
  try {
    const response = await api(`/v1/jobs/${encodeURIComponent(state.jobId)}/artifacts/${format}`, { raw: true });
    const blob = await response.blob();
    const disposition = response.headers.get("Content-Disposition") || "";
    const match = disposition.match(/filename="([^"]+)"/);
    const link = el("a", { href: URL.createObjectURL(blob), download: match ? match[1] : `${state.jobId}-${format}` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 60000);
    status.textContent = `${format}: ${fmtRate(blob.size)}B saved.`;
  } catch (err) {
    status.textContent = err.message;
  }
}

// ---- start ------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("signin-form").addEventListener("submit", signIn);
  $("signout").addEventListener("click", () => signOut("Signed out."));
  $("submit-form").addEventListener("submit", submitJob);
  $("cancel-job").addEventListener("click", cancelJob);
  $("retry-job").addEventListener("click", retryJob);
  $("neighbour-form").addEventListener("submit", findNeighbours);
  $("analogy-form").addEventListener("submit", solveAnalogy);
  $("projection-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const rows = [...$("neighbours").querySelectorAll("li")].map((li) => li.dataset.word);
    drawProjection(rows, rows.length ? $("neighbour-word").value.trim() : null)
      .catch((err) => { $("explorer-error").textContent = err.message; });
  });
  for (const button of document.querySelectorAll("button.download")) button.addEventListener("click", download);
  window.addEventListener("hashchange", route);
  route();
});
