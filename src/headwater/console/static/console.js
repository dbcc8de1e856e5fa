/* The console page: polls /api/metrics once a second and redraws tiles, charts and tables.
 * document.body.dataset.updates counts successful refreshes, so a test can tell the page is live. */
"use strict";

(() => {
  const POLL_MS = 1000;
  const COLORS = { in: "#4fa3ff", out: "#3ccf91", revenue: "#f5b041", clicks: "#b38cff", fresh: "#ff7a8a" };
  let updates = 0;

  const byId = (id) => document.getElementById(id);
  const num = (v, digits) =>
    v === null || v === undefined || Number.isNaN(v)
      ? "–"
      : Number(v).toLocaleString("en-US", { maximumFractionDigits: digits || 0 });
  const rate = (v) => num(v, v !== null && v < 10 ? 1 : 0);
  const ms = (v) => (v === null || v === undefined ? "–" : num(v, v < 10 ? 1 : 0) + " ms");

  function setText(id, text) {
    const node = byId(id);
    if (node.textContent !== text) node.textContent = text;
  }

  function row(cells) {
    const tr = document.createElement("tr");
    for (const [text, cls] of cells) {
      const td = document.createElement("td");
      td.textContent = text;
      if (cls) td.className = cls;
      tr.appendChild(td);
    }
    return tr;
  }

  function tiles(m) {
    setText("tile-in", rate(m.rates.events_in_per_s));
    setText("tile-out", rate(m.rates.events_out_per_s));
    setText("tile-dead", num(m.totals.dead_letters));
    setText("tile-alerts", num(m.totals.alerts));
    setText("tile-p50", ms(m.freshness_ms.p50));
    setText("tile-p99", ms(m.freshness_ms.p99));
    setText("tile-revenue", num(m.totals.revenue, 2));
    setText("tile-in-total", num(m.totals.events_in) + " total");
    setText("tile-out-total", num(m.totals.events_out) + " total");
    setText("tile-orders", num(m.totals.orders) + " orders");
    setText("tile-last", "last " + ms(m.freshness_ms.last));
    byId("tile-dead").closest(".tile").classList.toggle("warn", m.totals.dead_letters > 0);
    byId("tile-alerts").closest(".tile").classList.toggle("warn", m.totals.alerts > 0);
  }

  function charts(m) {
    const s = m.series;
    HwCharts.line(byId("chart-rates"), [
      { name: "in", points: s.events_in_per_s, color: COLORS.in },
      { name: "out", points: s.events_out_per_s, color: COLORS.out },
    ]);
    HwCharts.bars(byId("chart-revenue"), s.revenue_per_minute, { color: COLORS.revenue });
    HwCharts.bars(byId("chart-clicks"), s.clicks_per_minute, { color: COLORS.clicks });
    HwCharts.line(byId("chart-freshness"), [
      { name: "freshness", points: s.freshness_ms, color: COLORS.fresh },
    ], { unit: "" });
  }

  function alertTable(m) {
    const body = byId("alerts-body");
    const rows = m.alerts.slice(0, 20).map((a) =>
      row([
        [new Date(a.timestamp).toLocaleTimeString("en-GB"), "muted"],
        [a.key, ""],
        [num(a.value, 2), "num"],
        [num(a.score, 2), "num"],
      ]));
    if (rows.length === 0) rows.push(row([["no anomalies so far", "muted"], ["", ""], ["", ""], ["", ""]]));
    body.replaceChildren(...rows);
  }

  function lagTable(m) {
    const body = byId("lag-body");
    const rows = [];
    for (const group of Object.keys(m.lag).sort()) {
      const info = m.lag[group];
      const parts = Object.entries(info.partitions)
        .map(([label, lag]) => label + " " + num(lag))
        .join(", ");
      rows.push(row([[group, ""], [num(info.total), info.total > 0 ? "num warn-text" : "num"], [parts, "muted small"]]));
    }
    if (rows.length === 0) rows.push(row([["no consumer groups yet", "muted"], ["", ""], ["", ""]]));
    body.replaceChildren(...rows);
  }

  function render(m) {
    tiles(m);
    charts(m);
    alertTable(m);
    lagTable(m);
    setText("uptime", "up " + num(m.uptime_s, 0) + " s");
  }

  function status(live, text) {
    const node = byId("status");
    node.textContent = text;
    node.classList.toggle("live", live);
  }

  async function poll() {
    try {
      const response = await fetch("/api/metrics", { cache: "no-store" });
      if (!response.ok) throw new Error("metrics answered " + response.status);
      render(await response.json());
      updates += 1;
      document.body.dataset.updates = String(updates);
      status(true, "live");
    } catch (error) {
      status(false, "disconnected: " + error.message);
    } finally {
      setTimeout(poll, POLL_MS);
    }
  }

  poll();
})();
