// modelyard status dashboard: reads the status API, re-fetches what an event says changed.
// Plain JS, no build step. Everything shown is built with textContent (no HTML injection).
"use strict";

(function () {
  const TOKEN_KEY = "modelyard-status-token";
  const COLORS = ["#3b5bdb", "#12b886", "#f59f00", "#e64980", "#7048e8", "#1098ad", "#74b816"];
  const state = {
    token: sessionStorage.getItem(TOKEN_KEY) || "",
    selected: null, // model id shown in the detail panel
    version: 0,
    fetches: 0,
  };
  window.modelyard = state; // for tests and curious people

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "style") node.style.cssText = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function headers() {
    return state.token ? { Authorization: "Bearer " + state.token } : {};
  }

  async function api(path) {
    state.fetches += 1;
    const response = await fetch(path, { headers: headers(), cache: "no-store" });
    if (response.status === 401) {
      $("token-form").hidden = false;
      throw new Error("This status API needs a token: enter it above.");
    }
    const body = await response.json();
    if (!body.success) throw new Error(body.error ? body.error.code + ": " + body.error.message : "request failed");
    return body;
  }

  function showError(err) {
    const banner = $("error");
    if (err) {
      banner.textContent = String(err.message || err);
      banner.hidden = false;
    } else {
      banner.hidden = true;
    }
  }

  const gib = (v) => (v === null || v === undefined ? "–" : v + " GiB");
  const pct = (v) => Math.round(v * 1000) / 10 + "%";
  const num = (v, digits, unit) => (v === null || v === undefined ? "–" : v.toFixed(digits) + (unit || ""));
  const ms = (v) => (v === null || v === undefined ? "–" : v < 1 ? Math.round(v * 1000) + " ms" : v.toFixed(2) + " s");
  function replicas(e) {
    const scaling = e.max_replicas === null ? "" : ` (${e.min_replicas}–${e.max_replicas})`;
    return el("span", { class: "replicas", title: e.last_scale_reason || "" },
      `${e.current_replicas} → ${e.desired_replicas}`, el("div", { class: "muted" }, `${e.ready_replicas} ready${scaling}`));
  }

  // -- catalog ---------------------------------------------------------------------------

  function filterQuery() {
    const params = new URLSearchParams();
    const pairs = [["q", "filter-q"], ["category", "filter-category"], ["lifecycle", "filter-lifecycle"],
                   ["capability", "filter-capability"], ["tag", "filter-tag"]];
    for (const [name, id] of pairs) {
      const value = $(id).value.trim();
      if (value) params.set(name, value);
    }
    params.set("limit", "1000");
    return params.toString();
  }

  async function loadCategories() {
    const { data } = await api("/api/v1/registry/categories");
    const select = $("filter-category");
    const current = select.value;
    select.replaceChildren(el("option", { value: "" }, "All categories"));
    for (const [key, info] of Object.entries(data)) {
      select.append(el("option", { value: key }, `${info.icon} ${info.name} (${info.count})`));
    }
    select.value = current;
  }

  async function loadModels() {
    const { data, total } = await api("/api/v1/registry/models?" + filterQuery());
    $("catalog-count").textContent = `${total} model${total === 1 ? "" : "s"}`;
    $("models-empty").hidden = data.length > 0;
    const rows = data.map((m) =>
      el("tr", {
        class: "model-row" + (m.id === state.selected ? " selected" : ""),
        "data-id": m.id,
        onclick: () => selectModel(m.id),
      },
        el("td", {}, el("div", { class: "model-name" }, m.name), el("div", { class: "model-id mono" }, m.id)),
        el("td", {}, el("span", { class: "chip cat" }, m.category || "–")),
        el("td", {}, m.parameters || "–"),
        el("td", {}, gib(m.min_vram_gb), el("div", { class: "muted" }, m.recommended_vram_gb ? "rec. " + gib(m.recommended_vram_gb) : "")),
        el("td", {}, m.tags.map((t) => el("span", { class: "chip" }, t))),
        el("td", {}, el("span", { class: "badge " + m.status }, m.status),
          m.phase === "Invalid" ? el("div", {}, el("span", { class: "badge Invalid" }, "Invalid")) : null),
      ));
    document.querySelector("#models tbody").replaceChildren(...rows);
  }

  function selectModel(id) {
    state.selected = id;
    for (const row of document.querySelectorAll("#models tbody tr")) {
      row.classList.toggle("selected", row.dataset.id === id);
    }
    loadDetail().catch(showError);
  }

  function kv(obj) {
    const entries = Object.entries(obj || {}).filter(([, v]) => v !== null && v !== undefined);
    if (!entries.length) return el("p", { class: "muted" }, "none");
    return el("dl", { class: "kv" }, entries.flatMap(([k, v]) => [
      el("dt", {}, k.replace(/_/g, " ")),
      el("dd", { class: typeof v === "object" ? "mono" : "" }, typeof v === "object" ? JSON.stringify(v) : String(v)),
    ]));
  }

  async function loadDetail() {
    const panel = $("detail");
    if (!state.selected) return;
    let body;
    try {
      body = await api("/api/v1/registry/models/" + state.selected.split("/").map(encodeURIComponent).join("/"));
    } catch (err) {
      panel.replaceChildren(el("p", { class: "muted" }, String(err.message || err)));
      return;
    }
    const m = body.data;
    const caps = Object.entries(m.capabilities).map(([k, v]) => el("span", { class: "cap" + (v ? " yes" : "") }, k.replace(/_/g, " ")));
    const training = m.training_defaults || {};
    panel.replaceChildren(el("div", {},
      el("h3", {}, m.name),
      el("div", { class: "model-id mono" }, m.id),
      el("p", {}, el("span", { class: "chip cat" }, m.category || "–"), " ", el("span", { class: "badge " + m.status }, m.status), " ",
        el("span", { class: "badge " + m.phase }, m.phase), " ", el("span", { class: "chip" }, m.engine)),
      m.description ? el("p", {}, m.description) : null,
      m.reason ? el("p", { class: "reason" }, m.reason) : null,
      el("h4", {}, "Requirements"), kv(m.requirements),
      el("h4", {}, "Capabilities"), el("div", { class: "caps" }, caps),
      el("h4", {}, "Inference defaults"), kv(m.inference_defaults),
      m.generation_defaults ? [el("h4", {}, "Generation defaults"), kv(m.generation_defaults)] : null,
      training.hyperparameters ? [el("h4", {}, "Training hyperparameters"), kv(training.hyperparameters)] : null,
      training.lora_config ? [el("h4", {}, "LoRA"), kv(training.lora_config)] : null,
      el("h4", {}, `Endpoints serving it (${m.endpoints.length})`),
      m.endpoints.length
        ? el("table", { class: "mini" }, m.endpoints.map((e) => el("tr", { class: "detail-endpoint", "data-name": e.namespace + "/" + e.name },
            el("td", { class: "mono" }, e.namespace + "/" + e.name),
            el("td", {}, el("span", { class: "badge " + e.phase }, e.phase)),
            el("td", {}, `${e.ready_replicas}/${e.replicas}`),
            el("td", {}, pct(e.share)))))
        : el("p", { class: "muted" }, "No ModelEndpoint serves this model."),
    ));
  }

  // -- endpoints -------------------------------------------------------------------------

  async function loadEndpoints() {
    const { data, total } = await api("/api/v1/endpoints");
    $("endpoints-count").textContent = `${total} endpoint${total === 1 ? "" : "s"}`;
    $("endpoints-empty").hidden = data.length > 0;
    const groups = new Map();
    for (const e of data) {
      if (!groups.has(e.served_name)) groups.set(e.served_name, []);
      groups.get(e.served_name).push(e);
    }
    const blocks = [];
    for (const [served, items] of groups) {
      const color = (i) => COLORS[i % COLORS.length];
      const ready = items.filter((e) => e.ready).length;
      blocks.push(el("div", { class: "group", "data-served": served },
        el("div", { class: "group-head" },
          el("span", { class: "served mono" }, served),
          el("span", { class: "muted" }, `${ready}/${items.length} ready`),
          el("div", { class: "split", title: "share of traffic" },
            items.map((e, i) => el("span", { style: `width:${e.share * 100}%;background:${color(i)}`, title: `${e.name}: ${pct(e.share)}` })))),
        el("table", {},
          el("thead", {}, el("tr", {}, ["Endpoint", "Phase", "Replicas now → wanted", "Demand", "Req/s", "Latency", "Tokens/s", "Weight", "Traffic", "URL", "Reason"].map((h) => el("th", {}, h)))),
          el("tbody", {}, items.map((e, i) => el("tr", { class: "endpoint-row", "data-name": e.namespace + "/" + e.name, "data-phase": e.phase },
            el("td", {}, el("span", { class: "legend", style: `background:${color(i)}` }), el("span", { class: "mono" }, e.namespace + "/" + e.name),
              el("div", { class: "model-id" }, "model " + e.model)),
            el("td", {}, el("span", { class: "badge " + e.phase }, e.phase)),
            el("td", { class: "replicas" }, replicas(e)),
            el("td", { class: "demand" }, num(e.demand, 0)),
            el("td", { class: "rps" }, num(e.requests_per_s, 1)),
            el("td", { class: "latency" }, ms(e.latency_s)),
            el("td", { class: "tps" }, num(e.tokens_per_s, 1)),
            el("td", {}, String(e.weight)),
            el("td", { class: "share" }, pct(e.share)),
            el("td", { class: "mono" }, e.url || "–"),
            el("td", {}, e.reason ? el("span", { class: "reason " + e.health }, e.reason + (e.message ? ": " + e.message : "")) : el("span", { class: "muted" }, "–")),
          ))))));
    }
    $("endpoint-groups").replaceChildren(...blocks);
  }

  // -- training jobs ---------------------------------------------------------------------

  function eta(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    const m = Math.floor(seconds / 60), s = seconds % 60;
    return m ? `${m}m ${s}s` : `${s}s`;
  }

  async function loadTraining() {
    const { data, total } = await api("/api/v1/trainingjobs");
    $("training-count").textContent = `${total} job${total === 1 ? "" : "s"}`;
    $("jobs-empty").hidden = data.length > 0;
    const rows = data.map((j) => {
      const p = j.progress, percent = p.percent === null ? 0 : Math.max(0, Math.min(100, p.percent));
      const fill = j.phase === "Succeeded" ? "fill done" : j.phase === "Failed" ? "fill failed" : "fill";
      const label = p.total_steps ? `${p.step || 0}/${p.total_steps} steps · ${Math.round(percent)}%` : `${Math.round(percent)}%`;
      return el("tr", { class: "job-row", "data-name": j.namespace + "/" + j.name },
        el("td", { class: "mono" }, j.namespace + "/" + j.name),
        el("td", {}, j.model),
        el("td", {}, el("span", { class: "chip" }, j.method)),
        el("td", {}, el("span", { class: "badge " + j.phase }, j.phase), j.message ? el("div", { class: "reason" }, j.message) : null),
        el("td", {}, el("div", { class: "bar" }, el("div", { class: fill, style: `width:${percent}%` }), el("div", { class: "label" }, label))),
        el("td", {}, p.loss === null ? "–" : p.loss.toFixed(3)),
        el("td", {}, eta(p.eta_seconds)));
    });
    document.querySelector("#jobs tbody").replaceChildren(...rows);
  }

  // -- live updates ----------------------------------------------------------------------

  const RELOADERS = {
    ModelEntry: [loadCategories, loadModels, loadDetail],
    ModelEndpoint: [loadEndpoints, loadDetail],
    TrainingJob: [loadTraining],
  };

  async function refresh(kinds) {
    const jobs = new Set();
    for (const kind of kinds) for (const load of RELOADERS[kind] || []) jobs.add(load);
    try {
      await Promise.all([...jobs].map((load) => load()));
      showError(null);
    } catch (err) {
      showError(err);
    }
  }

  function setLive(on, text) {
    $("live").className = "live " + (on ? "on" : "off");
    $("live-text").textContent = text;
  }

  function onChange(data) {
    state.version = data.version;
    refresh(data.kinds);
  }

  function connectEventSource() {
    const source = new EventSource("/api/v1/events");
    source.addEventListener("hello", (ev) => { setLive(true, "live"); const d = JSON.parse(ev.data); if (d.version !== state.version && state.version) refresh(Object.keys(RELOADERS)); state.version = d.version; });
    source.addEventListener("change", (ev) => onChange(JSON.parse(ev.data)));
    source.onerror = () => setLive(false, "reconnecting");
  }

  // EventSource cannot send a header: with a token, read the stream through fetch instead.
  async function connectFetchStream() {
    for (;;) {
      try {
        const response = await fetch("/api/v1/events", { headers: headers() });
        if (!response.ok) throw new Error("events: HTTP " + response.status);
        setLive(true, "live");
        const reader = response.body.getReader();
        const decoder = new TextDecoder();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true });
          let cut;
          while ((cut = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            const event = (block.match(/^event: (.*)$/m) || [])[1];
            const data = (block.match(/^data: (.*)$/m) || [])[1];
            if (event === "change" && data) onChange(JSON.parse(data));
          }
        }
      } catch (err) {
        /* fall through to reconnect */
      }
      setLive(false, "reconnecting");
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }

  // -- start -----------------------------------------------------------------------------

  function debounce(fn, ms) {
    let timer = null;
    return () => { clearTimeout(timer); timer = setTimeout(fn, ms); };
  }

  function start() {
    const reloadModels = debounce(() => loadModels().then(() => showError(null)).catch(showError), 150);
    for (const id of ["filter-q", "filter-tag"]) $(id).addEventListener("input", reloadModels);
    for (const id of ["filter-category", "filter-lifecycle", "filter-capability"]) $(id).addEventListener("change", reloadModels);
    $("token-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      state.token = $("token-input").value.trim();
      sessionStorage.setItem(TOKEN_KEY, state.token);
      window.location.reload();
    });
    refresh(Object.keys(RELOADERS));
    if (state.token) connectFetchStream();
    else connectEventSource();
  }

  start();
})();
