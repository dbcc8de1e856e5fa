/* Small SVG charts for the console: a multi-series line chart and a bar chart.
 * Each draw replaces the chart's SVG and records how many points it drew in data-points,
 * so a test driving a headless browser can tell a chart has data. */
"use strict";

const HwCharts = (() => {
  const SVG_NS = "http://www.w3.org/2000/svg";
  const HEIGHT = 190;
  const PAD = { left: 52, right: 12, top: 22, bottom: 24 };

  function el(name, attrs, text) {
    const node = document.createElementNS(SVG_NS, name);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // A round step near range/count, so axis labels read 0, 250, 500 rather than 0, 237, 474.
  function niceStep(range, count) {
    if (!(range > 0)) return 1;
    const raw = range / count;
    const magnitude = Math.pow(10, Math.floor(Math.log10(raw)));
    const fraction = raw / magnitude;
    const nice = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 2.5 ? 2.5 : fraction <= 5 ? 5 : 10;
    return nice * magnitude;
  }

  function compact(value) {
    const abs = Math.abs(value);
    if (abs >= 1e6) return (value / 1e6).toFixed(abs >= 1e7 ? 0 : 1) + "M";
    if (abs >= 1e3) return (value / 1e3).toFixed(abs >= 1e4 ? 0 : 1) + "k";
    if (abs > 0 && abs < 1) return value.toFixed(2);
    return String(Math.round(value * 10) / 10);
  }

  function clock(ms, withSeconds) {
    const d = new Date(ms);
    const two = (n) => String(n).padStart(2, "0");
    const hm = two(d.getHours()) + ":" + two(d.getMinutes());
    return withSeconds ? hm + ":" + two(d.getSeconds()) : hm;
  }

  function frame(container, count) {
    const width = Math.max(240, Math.floor(container.clientWidth || 480));
    const svg = el("svg", {
      width: width, height: HEIGHT, viewBox: `0 0 ${width} ${HEIGHT}`,
      role: "img", class: "chart-svg",
    });
    svg.dataset.points = String(count);
    container.replaceChildren(svg);
    return { svg, width, plotW: width - PAD.left - PAD.right, plotH: HEIGHT - PAD.top - PAD.bottom };
  }

  function empty(box, message) {
    box.svg.appendChild(el("text", {
      x: box.width / 2, y: HEIGHT / 2, "text-anchor": "middle", class: "chart-empty",
    }, message));
  }

  function yAxis(box, maxValue, unit) {
    const step = niceStep(maxValue, 4);
    const top = Math.max(step, Math.ceil(maxValue / step) * step);
    for (let v = 0; v <= top + step / 2; v += step) {
      const y = PAD.top + box.plotH - (v / top) * box.plotH;
      box.svg.appendChild(el("line", {
        x1: PAD.left, x2: PAD.left + box.plotW, y1: y, y2: y, class: "chart-grid",
      }));
      box.svg.appendChild(el("text", {
        x: PAD.left - 6, y: y + 4, "text-anchor": "end", class: "chart-label",
      }, compact(v) + (unit || "")));
    }
    return (v) => PAD.top + box.plotH - (Math.max(0, v) / top) * box.plotH;
  }

  function xLabel(box, x, text, anchor) {
    box.svg.appendChild(el("text", {
      x: x, y: HEIGHT - 6, "text-anchor": anchor, class: "chart-label",
    }, text));
  }

  /* series: [{name, points: [[t_ms, v], ...], color}]; opts: {unit} */
  function line(container, series, opts) {
    const options = opts || {};
    const drawn = series.filter((s) => Array.isArray(s.points) && s.points.length > 0);
    const count = drawn.reduce((n, s) => n + s.points.length, 0);
    const box = frame(container, count);
    if (count === 0) return empty(box, "waiting for data");
    const all = drawn.flatMap((s) => s.points);
    const t0 = Math.min(...all.map((p) => p[0]));
    const t1 = Math.max(...all.map((p) => p[0]));
    const span = Math.max(1, t1 - t0);
    const toY = yAxis(box, Math.max(...all.map((p) => p[1])), options.unit);
    const toX = (t) => PAD.left + ((t - t0) / span) * box.plotW;
    for (const s of drawn) {
      const path = s.points
        .map((p, i) => (i === 0 ? "M" : "L") + toX(p[0]).toFixed(1) + "," + toY(p[1]).toFixed(1))
        .join(" ");
      box.svg.appendChild(el("path", { d: path, class: "chart-line", stroke: s.color }));
      const last = s.points[s.points.length - 1];
      box.svg.appendChild(el("circle", {
        cx: toX(last[0]), cy: toY(last[1]), r: 3, fill: s.color,
      }));
    }
    xLabel(box, PAD.left, clock(t0, true), "start");
    xLabel(box, PAD.left + box.plotW, clock(t1, true), "end");
    if (drawn.length > 1) legend(box, drawn);
  }

  // Right-aligned above the plot, so it never covers the lines.
  function legend(box, drawn) {
    let x = box.width - PAD.right;
    for (const s of drawn.slice().reverse()) {
      const label = el("text", { x: x, y: 11, "text-anchor": "end", class: "chart-legend" }, s.name);
      box.svg.appendChild(label);
      x -= s.name.length * 7 + 4;
      box.svg.appendChild(el("rect", { x: x - 10, y: 2, width: 10, height: 10, rx: 2, fill: s.color }));
      x -= 22;
    }
  }

  /* points: [[window_start_ms, v], ...]; opts: {color, unit, max: bars shown} */
  function bars(container, points, opts) {
    const options = opts || {};
    const shown = (points || []).slice(-(options.max || 30));
    const box = frame(container, shown.length);
    if (shown.length === 0) return empty(box, "waiting for the first window");
    const toY = yAxis(box, Math.max(...shown.map((p) => p[1])), options.unit);
    const slot = box.plotW / shown.length;
    const width = Math.max(2, slot * 0.7);
    const every = Math.ceil(shown.length / 6);
    shown.forEach((p, i) => {
      const x = PAD.left + i * slot + (slot - width) / 2;
      const y = toY(p[1]);
      const bar = el("rect", {
        x: x.toFixed(1), y: y.toFixed(1), width: width.toFixed(1),
        height: Math.max(0, PAD.top + box.plotH - y).toFixed(1), fill: options.color, class: "chart-bar",
      });
      bar.appendChild(el("title", {}, clock(p[0], false) + "  " + compact(p[1])));
      box.svg.appendChild(bar);
      if (i % every === 0) xLabel(box, x + width / 2, clock(p[0], false), "middle");
    });
  }

  return { line, bars, compact };
})();
