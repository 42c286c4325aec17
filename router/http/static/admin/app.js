// turnout's admin page: plain DOM, no framework, no build step. Everything shown comes from the
// gateway's JSON endpoints, called with the admin key the user typed (kept in sessionStorage, sent
// only as a Bearer header). Every value reaches the page as text (textContent, createTextNode),
// never as markup, and every API error is shown in the section that asked.
"use strict";

(() => {
  const KEY = "turnout-admin-key";
  const SVG = "http://www.w3.org/2000/svg";
  const COLOURS = 8; // classes c0..c7 in style.css
  const $ = (selector, root = document) => root.querySelector(selector);

  /** An element with attributes (never event handlers) and children (strings become text). */
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) {
      if (value !== null && value !== undefined && value !== false) node.setAttribute(name, String(value));
    }
    for (const child of children.flat()) {
      node.append(child instanceof Node ? child : document.createTextNode(String(child ?? "")));
    }
    return node;
  }

  function svg(tag, attrs = {}, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  /** One call to the gateway: the parsed JSON, or an ApiError carrying OpenAI's error message. */
  async function api(method, path, body) {
    const headers = { authorization: "Bearer " + (sessionStorage.getItem(KEY) || "") };
    if (body !== undefined) headers["content-type"] = "application/json";
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
        credentials: "omit",
      });
    } catch (error) {
      throw new ApiError(0, "The gateway did not answer: " + error.message);
    }
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!response.ok) {
      const message = data && data.error && data.error.message ? data.error.message : text.slice(0, 300);
      throw new ApiError(response.status, `${response.status} ${response.statusText}: ${message}`);
    }
    if (data === null) throw new ApiError(response.status, "The gateway's answer was not JSON.");
    return data;
  }

  function showError(section, error) {
    const box = $("p.error", section);
    box.textContent = error instanceof Error ? error.message : String(error);
    box.hidden = false;
  }

  function clearError(section) {
    const box = $("p.error", section);
    box.textContent = "";
    box.hidden = true;
  }

  /** Runs a section's loader; its error is shown in that section (a 401 sends the user to log in). */
  async function guarded(id, work) {
    const section = document.getElementById(id);
    clearError(section);
    section.setAttribute("aria-busy", "true");
    try {
      await work(section);
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return logout(error.message);
      showError(section, error);
    } finally {
      section.removeAttribute("aria-busy");
    }
  }

  const usd = (value) => {
    const amount = Number(value || 0);
    return "$" + (amount === 0 ? "0" : amount < 0.01 ? amount.toFixed(6) : amount.toFixed(2));
  };
  const number = (value) => Number(value || 0).toLocaleString("en");
  const plural = (count, noun) => `${number(count)} ${noun}${count === 1 ? "" : "s"}`;
  const when = (seconds) => new Date(seconds * 1000).toISOString().replace("T", " ").slice(0, 16) + " UTC";

  function limitsText(limits) {
    const names = { rpm: "req/min", tpm: "tok/min", concurrent: "concurrent", usd_day: "USD/day", usd_month: "USD/month" };
    const parts = Object.entries(limits || {}).map(([name, value]) => `${value} ${names[name] || name}`);
    return parts.length ? parts.join(", ") : "none";
  }

  /** Spend per key or team for the UTC day and month so far (the windows budgets are counted in). */
  async function spend(by) {
    const now = new Date().toISOString();
    const [day, month] = await Promise.all([
      api("GET", `/v1/usage?by=${by}&since=${now.slice(0, 10)}`),
      api("GET", `/v1/usage?by=${by}&since=${now.slice(0, 7)}-01`),
    ]);
    const index = (summary) => new Map(summary.groups.map((group) => [group[by], group.cost_usd]));
    return { day: index(day), month: index(month) };
  }

  async function loadKeys(section) {
    const [keys, spent] = await Promise.all([api("GET", "/v1/admin/keys"), spend("key")]);
    const body = $("tbody", section);
    body.replaceChildren(
      ...keys.data.map((key) => {
        const revoke = key.revoked_at
          ? ""
          : el("button", { type: "button", class: "revoke", "data-id": key.id }, "Revoke");
        if (revoke) revoke.addEventListener("click", () => revokeKey(key));
        return el(
          "tr",
          { "data-id": key.id, class: key.revoked_at ? "revoked" : null },
          el("td", { class: "name" }, key.name),
          el("td", {}, el("code", {}, key.id)),
          el("td", {}, key.team || "—"),
          el("td", {}, key.models ? key.models.join(", ") : "all"),
          el("td", {}, limitsText(key.limits)),
          el("td", { class: "num" }, usd(spent.day.get(key.id))),
          el("td", { class: "num" }, usd(spent.month.get(key.id))),
          el("td", {}, key.revoked_at ? "revoked " + when(key.revoked_at) : "active"),
          el("td", {}, revoke),
        );
      }),
    );
  }

  async function revokeKey(key) {
    if (!window.confirm(`Revoke the key "${key.name}" (${key.id})? Its holders lose access at once.`)) return;
    await guarded("keys", async (section) => {
      await api("DELETE", `/v1/admin/keys/${encodeURIComponent(key.id)}`);
      await loadKeys(section);
    });
  }

  /** The limits a form's rpm and budget fields ask for (an empty field is left out). */
  function formLimits(fields) {
    const limits = {};
    if (fields.get("rpm") !== "") limits.rpm = Number.parseInt(fields.get("rpm"), 10);
    if (fields.get("budget") !== "") limits.usd_month = Number.parseFloat(fields.get("budget"));
    return limits;
  }

  async function createKey(form) {
    await guarded("keys", async (section) => {
      const fields = new FormData(form);
      const body = { name: fields.get("name").trim() };
      const team = fields.get("team").trim();
      if (team) body.team = team;
      const limits = formLimits(fields);
      if (Object.keys(limits).length) body.limits = limits;
      const created = await api("POST", "/v1/admin/keys", body);
      $("#new-key-name").textContent = `${created.name} (${created.id})`;
      $("#new-key-value").textContent = created.key;
      $("#new-key").hidden = false;
      form.reset();
      await loadKeys(section);
      await guarded("teams", loadTeams);
    });
  }

  async function putTeam(form) {
    await guarded("teams", async (section) => {
      const fields = new FormData(form);
      const name = fields.get("name").trim();
      await api("PUT", `/v1/admin/teams/${encodeURIComponent(name)}`, { limits: formLimits(fields) });
      form.reset();
      await loadTeams(section);
    });
  }

  async function loadTeams(section) {
    const [teams, spent] = await Promise.all([api("GET", "/v1/admin/teams"), spend("team")]);
    const rows = teams.data.map((team) =>
      el(
        "tr",
        { "data-team": team.name },
        el("td", { class: "name" }, team.name),
        el("td", { class: "num" }, team.keys),
        el("td", {}, limitsText(team.limits)),
        el("td", { class: "num" }, usd(spent.day.get(team.name))),
        el("td", { class: "num" }, usd(spent.month.get(team.name))),
      ),
    );
    $("tbody", section).replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 5 }, "No teams yet."))]));
  }

  let usageData = null;

  async function loadUsage(section) {
    const form = $("#usage-form");
    const query = new URLSearchParams({ since: form.since.value, bucket: form.bucket.value });
    usageData = await api("GET", "/v1/admin/usage/series?" + query);
    renderUsage();
  }

  function bucketLabel(iso, seconds) {
    const text = iso.replace("T", " ").slice(0, 16);
    return seconds >= 86400 ? text.slice(0, 10) : text;
  }

  function renderUsage() {
    if (!usageData) return;
    const metric = $("#usage-form").metric.value;
    const rows = usageData.by_route;
    const total = (name) => rows.reduce((sum, row) => sum + Number(row[name] || 0), 0);
    $("#usage-totals").textContent =
      `${plural(total("requests"), "request")}, ${plural(total("tokens"), "token")}, ${usd(total("cost_usd"))} ` +
      `from ${usageData.since.slice(0, 16).replace("T", " ")} to ${usageData.until.slice(0, 16).replace("T", " ")} UTC`;
    for (const dimension of ["route", "backend"]) {
      const target = document.getElementById("usage-" + dimension);
      target.replaceChildren(...usageView(usageData["by_" + dimension], dimension, metric));
    }
  }

  /** A stacked bar chart over every bucket of the window, and a table of the buckets with requests. */
  function usageView(rows, dimension, metric) {
    if (!rows.length) return [el("p", { class: "hint" }, "No requests in this window.")];
    const names = [...new Set(rows.map((row) => row[dimension] ?? "(none)"))];
    const totals = new Map(names.map((name) => [name, 0]));
    const cells = new Map(); // bucket -> name -> value
    for (const row of rows) {
      const name = row[dimension] ?? "(none)";
      const value = Number(row[metric] || 0);
      totals.set(name, totals.get(name) + value);
      if (!cells.has(row.bucket)) cells.set(row.bucket, new Map());
      cells.get(row.bucket).set(name, value);
    }
    names.sort((a, b) => totals.get(b) - totals.get(a));
    const format = metric === "cost_usd" ? usd : number;
    const seconds = usageData.bucket_seconds;
    const table = el(
      "table",
      { class: "usage", "data-dimension": dimension },
      el("thead", {}, el("tr", {}, el("th", {}, "Bucket (UTC)"), names.map((name) => el("th", {}, name)), el("th", {}, "Total"))),
      el(
        "tbody",
        {},
        [...cells.keys()].sort().reverse().map((bucket) => {
          const values = names.map((name) => cells.get(bucket).get(name) || 0);
          return el(
            "tr",
            { "data-bucket": bucket },
            el("td", {}, bucketLabel(bucket, seconds)),
            values.map((value) => el("td", { class: "num" }, format(value))),
            el("td", { class: "num" }, format(values.reduce((a, b) => a + b, 0))),
          );
        }),
      ),
    );
    return [chart(cells, names, metric, format), legend(names), table];
  }

  function chart(cells, names, metric, format) {
    const buckets = usageData.buckets;
    const width = 720, height = 160, top = 14, bottom = 18;
    const heights = buckets.map((bucket) => names.reduce((sum, name) => sum + ((cells.get(bucket) || new Map()).get(name) || 0), 0));
    const peak = Math.max(...heights, 0) || 1;
    const step = width / Math.max(buckets.length, 1);
    const scale = (height - top - bottom) / peak;
    const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img" });
    root.append(svg("title", {}, `${metric} per bucket, stacked by ${names.length} group(s)`));
    buckets.forEach((bucket, index) => {
      let y = height - bottom;
      names.forEach((name, colour) => {
        const value = (cells.get(bucket) || new Map()).get(name) || 0;
        if (!value) return;
        const tall = Math.max(value * scale, 1);
        y -= tall;
        const bar = svg("rect", { x: index * step + 0.5, y, width: Math.max(step - 1, 1), height: tall, class: "c" + (colour % COLOURS) });
        bar.append(svg("title", {}, `${bucketLabel(bucket, usageData.bucket_seconds)} · ${name}: ${format(value)}`));
        root.append(bar);
      });
    });
    root.append(svg("line", { x1: 0, y1: height - bottom, x2: width, y2: height - bottom, class: "axis" }));
    root.append(svg("text", { x: 2, y: 10, class: "label" }, format(peak)));
    if (buckets.length) {
      root.append(svg("text", { x: 2, y: height - 4, class: "label" }, bucketLabel(buckets[0], usageData.bucket_seconds)));
      root.append(svg("text", { x: width - 2, y: height - 4, class: "label end" }, bucketLabel(buckets[buckets.length - 1], usageData.bucket_seconds)));
    }
    return root;
  }

  function legend(names) {
    return el("ul", { class: "legend" }, names.map((name, index) => el("li", {}, el("span", { class: "swatch c" + (index % COLOURS) }), name)));
  }

  async function loadPolicy() {
    const policy = await api("GET", "/v1/admin/policy");
    $("#policy-version").textContent = policy.version;
    $("#policy-path").textContent = policy.path;
    $("#policy-rejected").hidden = !policy.error;
    $("#policy-error").textContent = policy.error || "";
    $("#policy-rejected-at").textContent = policy.error_at ? ` (the file was written ${policy.error_at.replace("T", " ").slice(0, 19)} UTC)` : "";
    $("#policy-rejected-version").textContent = policy.version;
    let note;
    if (policy.read_error) note = policy.read_error;
    else if (policy.live) note = "The file below is the running policy.";
    else note = `The file below (version ${policy.file_version}) is not the running policy: the gateway keeps version ${policy.version} until the file is fixed.`;
    $("#policy-text-note").textContent = note;
    const text = $("#policy-text");
    text.textContent = policy.text || "";
    text.classList.toggle("not-live", !policy.live);
  }

  /** A window's shares per bin, as "bin 12.5%" (the largest first, at most six). */
  function distribution(signal, side) {
    const shares = signal[side] || [];
    const pairs = (signal.bins || []).map((bin, index) => [bin, Number(shares[index] || 0)]);
    const shown = pairs.filter(([, share]) => share > 0).sort((a, b) => b[1] - a[1]);
    const text = shown.slice(0, 6).map(([bin, share]) => `${bin} ${(share * 100).toFixed(1)}%`).join(", ");
    return (text || "—") + (shown.length > 6 ? ", …" : "");
  }

  async function loadDrift(section) {
    const form = $("#drift-form");
    const query = new URLSearchParams({ reference: form.reference.value.trim(), current: form.current.value.trim() });
    const report = await api("GET", "/v1/admin/drift?" + query);
    const span = (start, end) => `${start.slice(0, 16).replace("T", " ")} to ${end.slice(0, 16).replace("T", " ")} UTC`;
    $("#drift-windows").textContent =
      `Reference ${span(report.reference_start, report.reference_end)}: ${plural(report.reference_rows, "request")}. ` +
      `Current ${span(report.current_start, report.current_end)}: ${plural(report.current_rows, "request")}.` +
      (report.thresholds
        ? ` PSI under ${report.thresholds.watch} is stable, up to ${report.thresholds.act} watch, above act;` +
          ` no PSI under ${report.thresholds.min_rows} requests in a window.`
        : "");
    const rows = (report.signals || []).map((signal) =>
      el(
        "tr",
        { "data-signal": signal.signal, class: "status-" + String(signal.status).replace(/[^a-z0-9]+/gi, "-") },
        el("td", {}, signal.signal),
        el("td", { class: "num" }, typeof signal.psi === "number" ? signal.psi.toFixed(3) : "—"),
        el("td", { class: "status" }, signal.status),
        el("td", { class: "num" }, `${number(signal.reference_rows)} → ${number(signal.current_rows)}`),
        el("td", { class: "dist" }, distribution(signal, "reference")),
        el("td", { class: "dist" }, distribution(signal, "current")),
      ),
    );
    $("tbody", section).replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 6 }, "No signals to compare."))]));
  }

  async function explainQuery(form) {
    await guarded("explain", async () => {
      $("#explain-result").hidden = true;
      const result = await api("POST", "/v1/route/explain", { query: form.query.value });
      const capability = result.signals.capability || {};
      const sensitivity = result.signals.sensitivity || {};
      $("#explain-route").textContent = result.route;
      $("#explain-backends").textContent = (result.backends || []).join(" → ") || "none";
      $("#explain-category").textContent = capability.category
        ? `${capability.category} (confidence ${capability.confidence})`
        : "— (no capability signal)";
      $("#explain-difficulty").textContent = capability.difficulty ?? "—";
      $("#explain-frontier").textContent = capability.frontier ?? "—";
      $("#explain-sensitive").textContent = sensitivity.flagged
        ? `yes${sensitivity.kept_inside ? ", kept inside" : ""}${result.sensitive_action ? " (" + result.sensitive_action + ")" : ""}`
        : "no";
      $("#explain-version").textContent = result.policy_version;
      const findings = (sensitivity.findings || []).map((f) =>
        el("li", {}, el("strong", {}, f.type), ` at ${f.start}–${f.end} (confidence ${f.confidence})`, f.detail ? ": " + f.detail : ""),
      );
      $("#explain-findings").replaceChildren(...(findings.length ? findings : [el("li", {}, "none")]));
      $("#explain-routes").replaceChildren(
        ...(result.routes_tried || []).map((trial) =>
          el(
            "li",
            { class: trial.matched ? "matched" : "skipped" },
            el("strong", {}, trial.route), trial.matched ? " — matched" : " — not matched",
            el("ul", {}, (trial.reasons || []).map((reason) => el("li", {}, reason))),
          ),
        ),
      );
      const notes = (result.notes || []).map((note) => el("li", {}, note));
      $("#explain-notes").replaceChildren(...(notes.length ? notes : [el("li", {}, "none")]));
      $("#explain-result").hidden = false;
    });
  }

  const LOADERS = { keys: loadKeys, teams: loadTeams, usage: loadUsage, policy: loadPolicy, drift: loadDrift };

  function loadAll() {
    return Promise.all(Object.entries(LOADERS).map(([id, load]) => guarded(id, load)));
  }

  async function login(key) {
    const error = $("#login-error");
    error.hidden = true;
    sessionStorage.setItem(KEY, key);
    try {
      await api("GET", "/v1/admin/keys"); // any admin-only call: 401 for a wrong key, 403 for a user's
    } catch (failure) {
      sessionStorage.removeItem(KEY);
      error.textContent = failure.message;
      error.hidden = false;
      return;
    }
    $("#login").hidden = true;
    $("#console").hidden = false;
    $("#logout").hidden = false;
    await loadAll();
  }

  function logout(message) {
    sessionStorage.removeItem(KEY);
    $("#console").hidden = true;
    $("#logout").hidden = true;
    $("#login").hidden = false;
    $("#new-key").hidden = true;
    $("#new-key-value").textContent = "";
    const error = $("#login-error");
    error.textContent = message || "";
    error.hidden = !message;
  }

  function start() {
    $("#login-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const field = $("#login-key");
      const key = field.value.trim();
      field.value = "";
      login(key);
    });
    $("#logout").addEventListener("click", () => {
      logout("");
      window.location.reload(); // drop every value the page showed
    });
    $("#key-form").addEventListener("submit", (event) => {
      event.preventDefault();
      createKey(event.target);
    });
    $("#team-form").addEventListener("submit", (event) => {
      event.preventDefault();
      putTeam(event.target);
    });
    $("#explain-form").addEventListener("submit", (event) => {
      event.preventDefault();
      explainQuery(event.target);
    });
    $("#drift-form").addEventListener("submit", (event) => {
      event.preventDefault();
      guarded("drift", loadDrift);
    });
    const usageForm = $("#usage-form");
    usageForm.since.addEventListener("change", () => guarded("usage", loadUsage));
    usageForm.bucket.addEventListener("change", () => guarded("usage", loadUsage));
    usageForm.metric.addEventListener("change", renderUsage);
    usageForm.addEventListener("submit", (event) => event.preventDefault());
    for (const button of document.querySelectorAll("button.refresh")) {
      const id = button.getAttribute("data-load");
      button.addEventListener("click", () => guarded(id, LOADERS[id]));
    }
    const saved = sessionStorage.getItem(KEY);
    if (saved) login(saved);
  }

  start();
})();
