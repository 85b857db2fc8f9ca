// archalign report: the clustered heatmap, dendrogram, search and pair alignments of one
// SimilarityMatrix. Everything it needs is in the JSON block written by
// archalign/similarity/report.py; it makes no request to any host.
"use strict";
(function () {
  const D = JSON.parse(document.getElementById("report-data").textContent);
  const n = D.labels.length;
  const DENDRO = 170, STRIP = 10, MARK = 10, PAD = 6;  // px, left of the heatmap
  // archalign.similarity.tree's palette, that of the PNG figures: no grey in it, grey being
  // the merges above the cut
  const ABOVE_CUT = "#999999";

  function bytes(b64) {
    const s = atob(b64), out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  }
  const TYPES = {uint8: Uint8Array, uint16: Uint16Array, uint32: Uint32Array, float32: Float32Array};
  // {dtype, data}: numpy's little-endian bytes, as every browser's typed arrays read them
  const typed = (spec) => new TYPES[spec.dtype](bytes(spec.data).buffer);

  // -- the matrix, quantised to uint16 over [lo, 1], in dendrogram leaf order
  const Q = typed(D.values);
  const lo = D.lo, span = 1 - D.lo;
  const value = (i, j) => lo + span * Q[i * n + j] / 65535;

  // -- what a similarity of 1 hides: the text of SimilarityMatrix.hidden_change. report.py
  // keeps the top step, 65535, for similarities of 1 to 1e-9 alone.
  function shortCount(x, digits) {  // half up in integers, as archalign/similarity/ties.py's _short_count
    const unit = 10 ** Math.max(String(x).length - digits, 0);
    const r = Math.floor((x + Math.floor(unit / 2)) / unit) * unit;
    for (const [power, suffix] of [[12, "T"], [9, "B"], [6, "M"], [3, "K"]]) {
      if (r >= 10 ** power) {
        const scaled = r / 10 ** power, whole = String(Math.floor(scaled)).length;
        return scaled.toFixed(Math.max(digits - whole, 0)) + suffix;
      }
    }
    return String(r);
  }
  function formatCounts(a, b) {  // as archalign/similarity/ties.py's format_counts
    const widest = Math.max(String(a).length, String(b).length);
    let digits = 3;
    while (digits < widest && shortCount(a, digits) === shortCount(b, digits)) digits++;
    return [shortCount(a, digits), shortCount(b, digits)];
  }
  function hiddenChange(i, j) {
    if (i === j || Q[i * n + j] !== 65535) return "";
    const d = D.depths, p = D.params, parts = [];
    if (d[i] !== null && d[j] !== null && d[i] !== d[j]) parts.push(`depth ${d[i]} → ${d[j]} layers`);
    if (p[i] !== null && p[j] !== null && p[i] !== p[j]) {
      const [a, b] = formatCounts(p[i], p[j]);
      parts.push(`parameters ${a} → ${b}`);
    }
    return parts.join(", ");
  }
  const sameDesign = (i, j) => { const hidden = hiddenChange(i, j); return hidden ? ` (same design; ${hidden})` : ""; };

  // -- linkage in leaf positions: merges[k] = [a, b, height]; ids >= n are merges
  const merges = D.merges, maxHeight = merges.length ? merges[merges.length - 1][2] : 1;
  const nodeY = new Float64Array(2 * n), nodeH = new Float64Array(2 * n);
  for (let i = 0; i < n; i++) nodeY[i] = i + 0.5;
  merges.forEach(([a, b, h], k) => { nodeY[n + k] = (nodeY[a] + nodeY[b]) / 2; nodeH[n + k] = h; });

  // -- the cut: clusters are the subtrees whose merges lie at or below the threshold
  let cut = 0, clusterOf = new Int32Array(n), nodeCluster = new Int32Array(2 * n - 1);
  function applyCut(threshold) {
    cut = threshold;
    const parent = Int32Array.from({length: 2 * n}, (_, i) => i);
    const find = (x) => { while (parent[x] !== x) x = parent[x] = parent[parent[x]]; return x; };
    merges.forEach(([a, b, h], k) => { if (h <= threshold) { parent[find(a)] = n + k; parent[find(b)] = n + k; } });
    const ids = new Map();
    for (let i = 0; i < n; i++) {
      const root = find(i);
      if (!ids.has(root)) ids.set(root, ids.size);
      clusterOf[i] = ids.get(root);
    }
    merges.forEach(([a, b, h], k) => { nodeCluster[n + k] = h <= threshold ? clusterOf[leftmost(n + k)] : -1; });
    for (let i = 0; i < n; i++) nodeCluster[i] = clusterOf[i];
    document.getElementById("cut-status").textContent =
      `${ids.size} clusters at distance ${threshold.toFixed(3)}`;
    return ids.size;
  }
  function leftmost(node) { while (node >= n) node = merges[node - n][0]; return node; }
  const clusterColour = (c) => c < 0 ? ABOVE_CUT : D.palette[c % D.palette.length];
  function thresholdFor(k) {  // halfway between the merges that leave k and k - 1 clusters
    const h = merges.map((m) => m[2]);
    if (k >= n) return 0;
    const below = n - k - 1 >= 0 ? h[n - k - 1] : 0, above = k > 1 ? h[n - k] : maxHeight + 1e-9;
    return (below + above) / 2;
  }

  // -- the heatmap image, built once: one pixel per cell
  const image = document.createElement("canvas");
  image.width = image.height = n;
  {
    const ctx = image.getContext("2d"), img = ctx.createImageData(n, n), px = img.data;
    const lut = bytes(D.colormap);
    for (let k = 0; k < n * n; k++) {
      const c = (Q[k] >> 8) * 3, p = 4 * k;
      px[p] = lut[c]; px[p + 1] = lut[c + 1]; px[p + 2] = lut[c + 2]; px[p + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
  }

  // -- the view: `scale` px per cell; (x0, y0) the cell at the heatmap's top-left corner
  const canvas = document.getElementById("view"), tip = document.getElementById("tip");
  let ctx, W, H, side, left, scale, x0 = 0, y0 = 0, highlight = -1;
  const shortlisted = new Set(D.shortlist);
  const LABEL_FONT = "px system-ui, sans-serif";
  // room for the row labels (right of the heatmap) and the column labels (below it): the
  // widest name at the largest size drawn, bold, at most 180 px
  const labelRoom = (() => {
    const c = document.createElement("canvas").getContext("2d");
    c.font = `bold 12${LABEL_FONT}`;
    return Math.min(180, Math.ceil(D.labels.reduce((w, x) => Math.max(w, c.measureText(x).width), 0)) + 8);
  })();
  function layout() {
    const dpr = window.devicePixelRatio || 1;
    // the header wraps on narrow windows: the canvas takes what is left of the window
    canvas.parentElement.style.height = `${Math.max(360, window.innerHeight - document.querySelector("header").offsetHeight)}px`;
    W = canvas.clientWidth; H = canvas.clientHeight;
    canvas.width = W * dpr; canvas.height = H * dpr;
    ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    left = DENDRO + STRIP + MARK + PAD;
    side = Math.max(50, Math.min(W - left - labelRoom - PAD, H - PAD - MARK - labelRoom));
  }
  function fit() { scale = side / n; x0 = y0 = 0; }
  function clampView() {
    scale = Math.max(side / n, Math.min(scale, 60));
    const visible = side / scale;
    x0 = Math.max(0, Math.min(x0, n - visible)); y0 = Math.max(0, Math.min(y0, n - visible));
  }
  const rowY = (i) => PAD + (i - y0) * scale, colX = (j) => left + (j - x0) * scale;

  function draw() {
    clampView();
    ctx.clearRect(0, 0, W, H);
    ctx.imageSmoothingEnabled = false;
    const visible = side / scale;
    ctx.drawImage(image, x0, y0, visible, visible, left, PAD, side, side);
    ctx.save();
    ctx.beginPath(); ctx.rect(0, PAD, W, side); ctx.clip();
    drawDendrogram();
    for (let i = Math.floor(y0); i < Math.min(n, Math.ceil(y0 + visible)); i++) {
      ctx.fillStyle = clusterColour(clusterOf[i]);
      ctx.fillRect(DENDRO, rowY(i), STRIP, Math.max(scale, 1));
    }
    ctx.fillStyle = "#000";
    for (const i of shortlisted) {  // a triangle pointing at the row
      const y = rowY(i) + scale / 2;
      ctx.beginPath(); ctx.moveTo(DENDRO + STRIP + 1, y - 4); ctx.lineTo(DENDRO + STRIP + MARK - 1, y);
      ctx.lineTo(DENDRO + STRIP + 1, y + 4); ctx.fill();
    }
    drawLabels(visible);
    ctx.restore();
    ctx.save();  // below the heatmap: the column marks and labels, within its columns
    ctx.beginPath(); ctx.rect(left, PAD + side, side, H - PAD - side); ctx.clip();
    ctx.fillStyle = "#000";
    for (const j of shortlisted) {  // a triangle pointing up at the column
      const x = colX(j) + scale / 2, y = PAD + side;
      ctx.beginPath(); ctx.moveTo(x - 4, y + MARK - 1); ctx.lineTo(x, y + 1); ctx.lineTo(x + 4, y + MARK - 1); ctx.fill();
    }
    drawColumnLabels(visible);
    ctx.restore();
    if (highlight >= 0) {
      ctx.strokeStyle = "#ff00ff"; ctx.lineWidth = 2;
      const t = Math.max(scale, 2);
      ctx.strokeRect(left, rowY(highlight), side, t);
      ctx.strokeRect(colX(highlight), PAD, t, side);
    }
    ctx.strokeStyle = "#888"; ctx.lineWidth = 1; ctx.strokeRect(left, PAD, side, side);
  }
  function drawDendrogram() {
    const x = (h) => DENDRO - 4 - (DENDRO - 8) * h / (maxHeight || 1);
    const y = (node) => PAD + (nodeY[node] - y0) * scale;
    ctx.lineWidth = 1.5;
    merges.forEach(([a, b, h], k) => {
      ctx.strokeStyle = clusterColour(nodeCluster[n + k]);
      ctx.beginPath();
      ctx.moveTo(x(nodeH[a]), y(a)); ctx.lineTo(x(h), y(a));
      ctx.lineTo(x(h), y(b)); ctx.lineTo(x(nodeH[b]), y(b));
      ctx.stroke();
      if (nodeCluster[n + k] >= 0) return;
      // each cluster's stem up to the cut in its colour, as in the PNG dendrogram: else a
      // singleton, or a cluster of models at distance 0, would show no colour at all
      for (const c of [a, b]) {
        if (nodeCluster[c] < 0) continue;
        ctx.strokeStyle = clusterColour(nodeCluster[c]);
        ctx.beginPath(); ctx.moveTo(x(nodeH[c]), y(c)); ctx.lineTo(x(cut), y(c)); ctx.stroke();
      }
    });
    ctx.strokeStyle = "#d62728"; ctx.setLineDash([4, 3]);
    ctx.beginPath(); ctx.moveTo(x(cut), PAD); ctx.lineTo(x(cut), PAD + side); ctx.stroke();
    ctx.setLineDash([]);
  }
  function drawLabels(visible) {
    if (scale < 7) return;  // too dense to read: hover names the row instead
    ctx.textBaseline = "middle";
    for (let i = Math.floor(y0); i < Math.min(n, Math.ceil(y0 + visible)); i++) {
      ctx.fillStyle = i === highlight ? "#c000c0" : "#222";
      ctx.font = `${shortlisted.has(i) ? "bold " : ""}${Math.min(12, scale - 1)}${LABEL_FONT}`;
      ctx.fillText(D.labels[i], left + side + 4, rowY(i) + scale / 2);
    }
  }
  function drawColumnLabels(visible) {  // read downwards, as the figures' rotated labels
    if (scale < 7) return;
    ctx.textBaseline = "middle";
    ctx.textAlign = "left";
    for (let j = Math.floor(x0); j < Math.min(n, Math.ceil(x0 + visible)); j++) {
      ctx.save();
      ctx.translate(colX(j) + scale / 2, PAD + side + MARK + 2);
      ctx.rotate(Math.PI / 2);
      ctx.fillStyle = j === highlight ? "#c000c0" : "#222";
      ctx.font = `${shortlisted.has(j) ? "bold " : ""}${Math.min(12, scale - 1)}${LABEL_FONT}`;
      ctx.fillText(D.labels[j], 0, 0);
      ctx.restore();
    }
  }
  function drawColourBar() {  // the colour map over [lo, 1], as the heatmap's cells use it
    const bar = document.getElementById("colorbar"), c = bar.getContext("2d");
    const lut = bytes(D.colormap), img = c.createImageData(bar.width, bar.height);
    for (let x = 0; x < bar.width; x++) {
      const k = Math.min(255, Math.floor(256 * x / bar.width)) * 3;
      for (let y = 0; y < bar.height; y++) {
        const p = 4 * (y * bar.width + x);
        img.data[p] = lut[k]; img.data[p + 1] = lut[k + 1]; img.data[p + 2] = lut[k + 2]; img.data[p + 3] = 255;
      }
    }
    c.putImageData(img, 0, 0);
    document.getElementById("colorbar-lo").textContent = String(lo);
    document.getElementById("colorbar-label").textContent = `${D.similarity} similarity`;
  }
  function cellAt(px, py) {
    if (px < left || px >= left + side || py < PAD || py >= PAD + side) return null;
    const j = Math.floor(x0 + (px - left) / scale), i = Math.floor(y0 + (py - PAD) / scale);
    return i >= 0 && i < n && j >= 0 && j < n ? [i, j] : null;
  }

  // -- zoom (wheel, around the cursor), pan (drag), hover, click
  canvas.addEventListener("wheel", (e) => {
    e.preventDefault();
    const cx = (e.offsetX - left) / scale + x0, cy = (e.offsetY - PAD) / scale + y0;
    scale *= Math.exp(-e.deltaY * 0.0015);
    clampView();
    x0 = cx - (e.offsetX - left) / scale; y0 = cy - (e.offsetY - PAD) / scale;
    draw();
  }, {passive: false});
  let drag = null;
  canvas.addEventListener("mousedown", (e) => { drag = {x: e.offsetX, y: e.offsetY, x0, y0, moved: false}; });
  window.addEventListener("mouseup", (e) => {
    if (drag && !drag.moved && e.target === canvas) {
      const cell = cellAt(e.offsetX, e.offsetY);
      if (cell) showAlignment(cell[0], cell[1]);
    }
    drag = null;
  });
  canvas.addEventListener("mousemove", (e) => {
    if (drag) {
      const dx = e.offsetX - drag.x, dy = e.offsetY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
      if (drag.moved) { x0 = drag.x0 - dx / scale; y0 = drag.y0 - dy / scale; draw(); }
    }
    const cell = cellAt(e.offsetX, e.offsetY);
    if (!cell) { tip.style.display = "none"; return; }
    const [i, j] = cell;
    tip.textContent = `${D.labels[i]}  ×  ${D.labels[j]}:  ${value(i, j).toFixed(4)}${sameDesign(i, j)}`;
    tip.style.display = "block";
    tip.style.left = `${Math.min(e.offsetX + 14, W - tip.offsetWidth - 4)}px`;
    tip.style.top = `${e.offsetY + 14}px`;
  });
  canvas.addEventListener("mouseleave", () => { tip.style.display = "none"; });
  canvas.addEventListener("dblclick", () => { fit(); draw(); });

  // -- search: an exact name first, else the first name containing the text
  const search = document.getElementById("search"), status = document.getElementById("search-status");
  const lower = D.labels.map((x) => x.toLowerCase());
  function find(text) {
    const q = text.trim().toLowerCase();
    if (!q) { highlight = -1; status.textContent = ""; draw(); return; }
    let i = lower.indexOf(q);
    const hits = lower.filter((x) => x.includes(q)).length;
    if (i < 0) i = lower.findIndex((x) => x.includes(q));
    if (i < 0) { highlight = -1; status.textContent = `no model matches "${text}"`; draw(); return; }
    highlight = i;
    if (scale * n <= side * 1.01) scale = Math.min(side / 40, 60);  // zoom in from the overview
    x0 = i - side / scale / 2; y0 = i - side / scale / 2;
    status.textContent = `${D.labels[i]}: row ${i + 1} of ${n}, cluster ${clusterOf[i] + 1}` +
      (shortlisted.has(i) ? ", shortlisted" : "") + (hits > 1 ? ` (${hits} names match)` : "");
    draw();
  }
  search.addEventListener("input", () => find(search.value));
  const list = document.getElementById("names");
  list.append(...D.labels.map((x) => Object.assign(document.createElement("option"), {value: x})));

  // -- the cut slider: a number of clusters, mapped to a distance between two merges
  const slider = document.getElementById("cut");
  slider.max = String(Math.min(n, 200));
  slider.value = String(Math.max(1, Math.min(n, D.clusters)));
  slider.addEventListener("input", () => { applyCut(thresholdFor(+slider.value)); draw(); });

  document.getElementById("shortlist").append(...D.shortlist.map((i) => {
    const chip = document.createElement("span");
    chip.textContent = D.labels[i];
    chip.addEventListener("click", () => { search.value = D.labels[i]; find(D.labels[i]); });
    return chip;
  }));

  // -- alignments, computed here from the embedded token ids (Gotoh, the aligner's scoring)
  const seqs = D.sequences && {ids: typed(D.sequences.ids), counts: typed(D.sequences.counts),
                                 offsets: D.sequences.offsets};
  const S = D.scoring, sub = S && S.substitution ? typed(S.substitution) : null;
  const V = D.vocabulary ? D.vocabulary.length : 0;
  function seq(i) { return seqs.ids.subarray(seqs.offsets[i], seqs.offsets[i + 1]); }
  function cnt(i) { return seqs.counts.subarray(seqs.offsets[i], seqs.offsets[i + 1]); }
  const pairScore = sub ? (x, y) => sub[x * V + y] : (x, y) => x === y ? S.match : S.mismatch;

  // Same recurrences and tie order as archalign/alignment/_nw_reference.py: a diagonal step first,
  // then a gap in b (E), then a gap in a (F); a gap is left where it was opened.
  function align(a, b) {
    const m = a.length, k = b.length, go = S.gap_open, ge = S.gap_extend;
    const trace = new Uint8Array((m + 1) * (k + 1));  // bits 0-1: H from diag/E/F; 2: E opened; 3: F opened
    let Hprev = new Float64Array(k + 1), Hcur = new Float64Array(k + 1);
    const F = new Float64Array(k + 1), E = new Float64Array(k + 1);
    for (let j = 1; j <= k; j++) Hprev[j] = go + (j - 1) * ge;
    E.fill(-Infinity);
    for (let i = 1; i <= m; i++) {
      Hcur[0] = go + (i - 1) * ge;
      let f = -Infinity;
      for (let j = 1; j <= k; j++) {
        const eOpen = Hprev[j] + go, eExt = E[j] + ge;
        const e = eOpen >= eExt ? eOpen : eExt;
        const fOpen = Hcur[j - 1] + go, fExt = f + ge;
        f = fOpen >= fExt ? fOpen : fExt;
        const d = Hprev[j - 1] + pairScore(a[i - 1], b[j - 1]);
        let h = d, t = 0;
        if (e > h) { h = e; t = 1; }
        if (f > h) { h = f; t = 2; }
        trace[i * (k + 1) + j] = t | (eOpen >= eExt ? 4 : 0) | (fOpen >= fExt ? 8 : 0);
        E[j] = e; Hcur[j] = h;
      }
      [Hprev, Hcur] = [Hcur, Hprev];
    }
    const score = Hprev[k];
    const path = [];
    let i = m, j = k, state = 0;
    while (i > 0 || j > 0) {
      const t = trace[i * (k + 1) + j];
      if (i === 0) state = 2; else if (j === 0) state = 1;
      else if (state === 0) state = t & 3;
      if (state === 0) { i--; j--; path.push([i, j]); }
      else if (state === 1) { const opened = j === 0 || (t & 4); i--; path.push([i, -1]); if (opened) state = 0; }
      else { const opened = i === 0 || (t & 8); j--; path.push([-1, j]); if (opened) state = 0; }
    }
    return {score, path: path.reverse()};
  }

  // "Conv2d(k=3,s=1,g=32)" -> ["Conv2d", Map{k: "3", s: "1", g: "32"}]
  function fields(name) {
    const cut = name.indexOf("(");
    if (cut < 0) return [name, new Map()];
    const map = new Map();
    for (const part of name.slice(cut + 1, -1).split(",")) {
      const eq = part.indexOf("=");
      map.set(part.slice(0, eq), part.slice(eq + 1));
    }
    return [name.slice(0, cut), map];
  }
  // A token as the diff shows it (archalign/diffing/text.py): the op and its fields, the fields
  // that differ from the other side's token in bold, so a substitution reads without hovering.
  function tokenCell(tokens, counts, index, kind, other) {
    const el = document.createElement("span");
    if (index < 0) { el.className = "gap"; el.textContent = "–"; return el; }
    const name = D.vocabulary[tokens[index]], count = counts[index];
    el.className = kind;
    el.title = name + (count > 1 ? ` ×${count}` : "");
    const [op, own] = fields(name), [otherOp, theirs] = other === null ? [op, own] : fields(other);
    el.append(op);
    if (own.size) {
      el.append("(");
      [...own].forEach(([k, v], n) => {
        if (n) el.append(",");
        const changed = otherOp === op && theirs.get(k) !== v;
        const field = document.createElement(changed ? "b" : "i");
        field.textContent = `${k}=${v}`;
        el.append(field);
      });
      el.append(")");
    }
    if (count > 1) el.append(`×${count}`);
    return el;
  }
  function nameColumn(i, j) {
    const col = document.createElement("div");
    col.className = "col";
    for (const k of [i, j]) {
      const el = document.createElement("span");
      el.className = "name";
      el.textContent = D.labels[k];
      col.append(el);
    }
    return col;
  }
  function showAlignment(i, j) {
    const head = document.getElementById("alignment-title"), body = document.getElementById("alignment-body");
    body.replaceChildren();
    if (!seqs) {
      head.textContent = `${D.labels[i]} vs ${D.labels[j]}: similarity ${value(i, j).toFixed(4)}` +
        `${sameDesign(i, j)} (no alignments in this report: ${D.alignments_note})`;
      return;
    }
    const a = seq(i), b = seq(j), ca = cnt(i), cb = cnt(j);
    const started = performance.now(), {score, path} = align(a, b);
    let same = 0, substituted = 0, gaps = 0;
    const cols = path.map(([p, q]) => {
      const kind = p < 0 || q < 0 ? "gap" : a[p] === b[q] ? "identical" : "substituted";
      if (kind === "gap") gaps++; else if (kind === "identical") same++; else substituted++;
      const col = document.createElement("div");
      col.className = "col";
      const other = (k, seqOther) => (k < 0 || kind !== "substituted" ? null : D.vocabulary[seqOther[k]]);
      col.append(tokenCell(a, ca, p, kind, other(q, b)), tokenCell(b, cb, q, kind, other(p, a)));
      return col;
    });
    body.append(nameColumn(i, j), ...cols);
    head.textContent = `${D.labels[i]} (top) vs ${D.labels[j]} (bottom): similarity ` +
      `${value(i, j).toFixed(4)}${sameDesign(i, j)}, score ${+score.toFixed(6)}, ${same} identical, ${substituted} ` +
      `substituted, ${gaps} gaps (${a.length} and ${b.length} tokens; aligned in this page in ` +
      `${(performance.now() - started).toFixed(0)} ms)`;
    document.getElementById("alignment").scrollIntoView({block: "nearest"});
  }

  // -- a small API for tests and for the console
  window.archalignReport = {
    labels: D.labels,
    cellCentre(a, b) {  // client coordinates of the cell (row a, column b), after zooming to it
      const i = D.labels.indexOf(a), j = D.labels.indexOf(b);
      scale = Math.max(scale, Math.min(side / 20, 60));
      x0 = j - side / scale / 2; y0 = i - side / scale / 2; draw();
      const r = canvas.getBoundingClientRect();
      return [r.left + colX(j) + scale / 2, r.top + rowY(i) + scale / 2];
    },
    align(a, b) { return align(seq(D.labels.indexOf(a)), seq(D.labels.indexOf(b))).score; },
    show(a, b) { showAlignment(D.labels.indexOf(a), D.labels.indexOf(b)); },
    hiddenChange(a, b) { return hiddenChange(D.labels.indexOf(a), D.labels.indexOf(b)) || null; },
  };

  layout(); fit(); applyCut(thresholdFor(+slider.value)); draw(); drawColourBar();
  window.addEventListener("resize", () => { layout(); draw(); });
  requestAnimationFrame(() => { window.archalignReport.painted = performance.now(); });
})();
