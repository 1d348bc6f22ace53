// facefield serve: the little the pages need a script for. Sortable tables, the live overview
// (Server-Sent Events), filters that apply on change, and the Try-it upload. Everything else is
// server-rendered HTML; results are written with textContent and DOM calls, never as markup.

const SVG = "http://www.w3.org/2000/svg";

/** Sorts a table by the clicked header's column: numbers as numbers, the rest as text. */
function sortTable(th) {
  const table = th.closest("table");
  const body = table.tBodies[0];
  if (!body) return;
  const column = [...th.parentElement.children].indexOf(th);
  const ascending = th.dataset.sort !== "asc";
  for (const other of th.parentElement.children) delete other.dataset.sort;
  th.dataset.sort = ascending ? "asc" : "desc";
  const key = (row) => {
    const cell = row.children[column];
    if (!cell) return "";
    const raw = cell.dataset.value ?? cell.textContent.trim();
    const number = Number.parseFloat(raw);
    return Number.isNaN(number) ? raw.toLowerCase() : number;
  };
  const rows = [...body.rows];
  rows.sort((a, b) => {
    const x = key(a);
    const y = key(b);
    const order = typeof x === "number" && typeof y === "number"
      ? x - y
      : String(x).localeCompare(String(y));
    return ascending ? order : -order;
  });
  body.append(...rows);
}

document.addEventListener("click", (event) => {
  const th = event.target.closest?.("table.sortable thead th");
  if (th) sortTable(th);
});

/** The overview follows a run: the server sends the fragment again whenever files change. */
function followLive() {
  const live = document.querySelector("[data-live]");
  if (!live || !("EventSource" in window)) return;
  const source = new EventSource(live.dataset.live);
  source.addEventListener("overview", (event) => {
    // Same-origin HTML rendered (and escaped) by the server, like the page itself.
    live.innerHTML = event.data;
    live.dataset.updates = String(Number(live.dataset.updates ?? 0) + 1);
  });
  addEventListener("pagehide", () => source.close());
}

function autoFilter() {
  const form = document.querySelector("form.filters");
  if (!form) return;
  // Empty fields stay out of the address: ?category=law, not ?category=law&split=&fold=….
  form.addEventListener("submit", () => {
    for (const field of form.elements) {
      if (field.name && field.value === "") field.disabled = true;
    }
  });
  // Back from the next page (the browser's page cache), the fields must work again.
  addEventListener("pageshow", () => {
    for (const field of form.elements) field.disabled = false;
  });
  form.addEventListener("change", () => form.requestSubmit());
}

const percent = (p) => `${(p * 100).toFixed(1)} %`;

function svgElement(name, attributes) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  return element;
}

/** Draws the preview with numbered boxes and one table row per face and model. */
function showResult(container, result) {
  container.replaceChildren();
  const figure = document.createElement("figure");
  const svg = svgElement("svg", {
    viewBox: `0 0 ${result.width} ${result.height}`,
    width: Math.min(480, result.width),
    role: "img",
    "aria-label": "your image with the faces found",
  });
  svg.append(svgElement("image", {
    href: result.preview,
    x: 0,
    y: 0,
    width: result.width,
    height: result.height,
    preserveAspectRatio: "none",
  }));
  const stroke = Math.max(2, result.width / 150);
  result.faces.forEach((face, i) => {
    const { x, y, width, height } = face.box;
    svg.append(svgElement("rect", {
      class: "facebox",
      x,
      y,
      width,
      height,
      fill: "none",
      stroke: "#00e676",
      "stroke-width": stroke,
    }));
    const label = svgElement("text", {
      x: x + stroke,
      y: y + stroke * 8,
      fill: "#00e676",
      "font-size": stroke * 8,
    });
    label.textContent = String(i + 1);
    svg.append(label);
  });
  figure.append(svg);
  container.append(figure);
  if (result.faces.length === 0) {
    const p = document.createElement("p");
    p.className = "no-face";
    p.textContent = `No face found (${result.noFace ?? "no_face"}).`;
    container.append(p);
    return;
  }
  const table = document.createElement("table");
  table.className = "predictions";
  const head = table.createTHead().insertRow();
  for (const title of ["face", "model", "predicts", "probabilities"]) {
    const th = document.createElement("th");
    th.textContent = title;
    head.append(th);
  }
  const body = table.createTBody();
  result.faces.forEach((face, i) => {
    for (const [model, answer] of Object.entries(face.answers)) {
      const row = body.insertRow();
      row.insertCell().textContent = String(i + 1);
      row.insertCell().textContent = model;
      const label = row.insertCell();
      label.className = "label";
      label.dataset.model = model;
      label.textContent = `${answer.label} (${percent(answer.probability)})`;
      row.insertCell().textContent = Object.entries(answer.probabilities)
        .map(([name, p]) => `${name} ${percent(p)}`).join(", ");
    }
  });
  container.append(table);
}

function tryIt() {
  const form = document.querySelector("form#try");
  if (!form) return;
  const status = document.querySelector("#try-status");
  const result = document.querySelector("#try-result");
  const input = form.querySelector("#image");
  const zone = form.querySelector("#dropzone");
  const csrf = document.querySelector('meta[name="csrf-token"]').content;

  const send = async () => {
    const data = new FormData(form);
    status.textContent = "Looking for faces…";
    status.className = "muted";
    const started = performance.now();
    let response;
    try {
      response = await fetch(form.action, {
        method: "POST",
        body: data,
        headers: { "x-csrf-token": csrf },
        credentials: "same-origin",
      });
    } catch (error) {
      status.textContent = `The server did not answer: ${error.message}`;
      status.className = "bad";
      return;
    }
    const body = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
    const ms = Math.round(performance.now() - started);
    form.dataset.roundtripMs = String(ms);
    if (!response.ok) {
      status.textContent = `Not predicted: ${body.error}`;
      status.className = "bad";
      result.replaceChildren();
      return;
    }
    status.textContent = `${body.faces.length} face(s), models ${body.models.join(", ")}: ` +
      `${body.ms} ms on the server, ${ms} ms round trip.`;
    status.className = "done";
    showResult(result, body);
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    send();
  });
  input.addEventListener("change", () => {
    if (input.files.length) send();
  });
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    if (!event.dataTransfer?.files.length) return;
    input.files = event.dataTransfer.files;
    send();
  });
}

followLive();
autoFilter();
tryIt();
