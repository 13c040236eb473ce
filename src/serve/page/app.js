// The page of `stargan serve`: collects a source, a target domain and a style, posts
// them to the server and shows the translations. Plain DOM calls only (no innerHTML with
// data), so nothing a file name or a server message contains can run as code.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  info: null,
  source: null, // {file} or {example}
  refs: [null, null], // each {file} or {example}
  previews: { source: null, ref0: null, ref1: null }, // object URLs to revoke
  nextRef: 0,
  busy: false,
};

function showError(message) {
  const b = $("banner");
  b.textContent = message;
  b.hidden = false;
}

function clearError() {
  $("banner").hidden = true;
}

function setBusy(busy, text) {
  state.busy = busy;
  $("translate").disabled = busy;
  $("interpolate").disabled = busy;
  $("progress").hidden = !busy;
  if (text) $("progress-text").textContent = text;
}

// A file chosen by the user, checked before it is sent (the server checks the bytes; a
// browser may not know the type of every file, so an unknown one is judged by its name).
function acceptFile(file) {
  const limits = state.info.limits;
  const known = file.type ? limits.types.includes(file.type) : /\.(png|jpe?g|webp)$/i.test(file.name);
  if (!known) {
    showError(`"${file.name}" is not a PNG, JPEG or WebP image.`);
    return false;
  }
  if (file.size > limits.max_body_bytes) {
    showError(`"${file.name}" is larger than ${Math.round(limits.max_body_bytes / 1048576)} MB.`);
    return false;
  }
  clearError();
  return true;
}

function exampleUrl(id) {
  return `/api/examples/${id}.png`;
}

// Shows `url` as a preview in `slot`, releasing the object URL it replaces.
function preview(slot, url) {
  if (state.previews[slot]) URL.revokeObjectURL(state.previews[slot]);
  state.previews[slot] = url.startsWith("blob:") ? url : null;
}

function setSource(src, url) {
  preview("source", url);
  state.source = src;
  const img = $("source-preview");
  img.src = url;
  img.hidden = false;
  document.querySelectorAll("#source-examples button").forEach((b) => {
    b.classList.toggle("selected", src.example !== undefined && Number(b.dataset.id) === src.example);
  });
}

function setRef(slot, src, url) {
  preview(`ref${slot}`, url);
  state.refs[slot] = src;
  const img = $(slot === 0 ? "ref-a" : "ref-b").querySelector("img");
  img.src = url;
  img.hidden = false;
  state.nextRef = 1 - slot;
}

function exampleButton(e, onPick) {
  const b = document.createElement("button");
  b.type = "button";
  b.dataset.id = String(e.id);
  b.title = `${e.name} (${e.domain})`;
  const img = document.createElement("img");
  img.src = exampleUrl(e.id);
  img.alt = `${e.name} (${e.domain})`;
  b.appendChild(img);
  b.addEventListener("click", () => onPick(e));
  return b;
}

function renderRefExamples() {
  const box = $("ref-examples");
  box.replaceChildren();
  const domain = $("domain").value;
  const matching = state.info.examples.filter((e) => e.domain === domain);
  for (const e of matching) {
    box.appendChild(exampleButton(e, (ex) => setRef(state.nextRef, { example: ex.id }, exampleUrl(ex.id))));
  }
  if (matching.length === 0) {
    const p = document.createElement("p");
    p.className = "small";
    p.textContent = "No bundled examples for this domain: upload a reference image.";
    box.appendChild(p);
  }
}

function wireDrop(dropId, inputId, onFile) {
  const drop = $(dropId);
  const input = $(inputId);
  input.addEventListener("change", () => {
    if (input.files.length > 0 && acceptFile(input.files[0])) onFile(input.files[0]);
    input.value = "";
  });
  drop.addEventListener("dragover", (ev) => {
    ev.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (ev) => {
    ev.preventDefault();
    drop.classList.remove("over");
    const f = ev.dataTransfer.files[0];
    if (f && acceptFile(f)) onFile(f);
  });
  drop.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" || ev.key === " ") input.click();
  });
}

function mode() {
  return document.querySelector("input[name=mode]:checked").value;
}

function appendImage(form, field, src) {
  if (!src) return;
  if (src.file) form.append(field, src.file, src.file.name);
  else form.append(`${field}_example`, String(src.example));
}

function buildForm(kind) {
  if (!state.source) throw new Error("Upload or pick a source image first.");
  const form = new FormData();
  appendImage(form, "source", state.source);
  form.append("domain", $("domain").value);
  form.append("mode", mode());
  if (mode() === "latent") {
    form.append("seed", $("seed").value || "0");
    form.append("psi", $("psi").value);
    if (kind === "translate") form.append("styles", $("styles").value || "1");
    else form.append("seed2", $("seed2").value || "1");
  } else {
    if (!state.refs[0]) throw new Error("Pick or upload a reference image (A).");
    appendImage(form, "reference", state.refs[0]);
    if (kind === "interpolate") {
      if (!state.refs[1]) throw new Error("The interpolation needs a second reference image (B).");
      appendImage(form, "reference2", state.refs[1]);
    }
  }
  return form;
}

function tile(image, caption, download) {
  const t = document.createElement("div");
  t.className = "tile";
  const img = document.createElement("img");
  img.src = `data:image/png;base64,${image.png}`;
  img.alt = image.label;
  t.appendChild(img);
  if (download) {
    const a = document.createElement("a");
    a.href = img.src;
    a.download = `${image.label}.png`;
    a.textContent = `download ${caption}`;
    t.appendChild(a);
  } else {
    const s = document.createElement("span");
    s.textContent = caption;
    t.appendChild(s);
  }
  return t;
}

async function post(kind) {
  if (state.busy) return;
  let form;
  try {
    form = buildForm(kind);
  } catch (e) {
    showError(e.message);
    return;
  }
  clearError();
  // What was asked, read now: the user may change the controls while it runs.
  const asked = {
    domain: $("domain").value,
    latent: mode() === "latent",
    seed: $("seed").value,
    psi: Number($("psi").value).toFixed(2),
  };
  setBusy(true, kind === "translate" ? "Translating…" : "Interpolating…");
  try {
    const res = await fetch(`/api/${kind}`, { method: "POST", body: form });
    let body = null;
    try {
      body = await res.json();
    } catch (_) {
      body = null;
    }
    if (!res.ok) {
      let msg = (body && body.error) || `The server answered ${res.status}.`;
      if (res.status === 503) msg += " (The queue is full: try again in a few seconds.)";
      showError(msg);
      return;
    }
    if (!body || !Array.isArray(body.images)) {
      showError("The server sent an answer this page does not understand.");
      return;
    }
    const target = kind === "translate" ? $("gallery") : $("strip");
    target.replaceChildren();
    body.images.forEach((im, i) => {
      const caption = kind === "translate" ? `style ${i + 1}` : `${i + 1}/${body.images.length}`;
      target.appendChild(tile(im, caption, kind === "translate"));
    });
    if (kind === "translate") {
      $("result-caption").textContent = `${body.images.length} translation(s) into ${asked.domain}, ` +
        (asked.latent ? `seed ${asked.seed}, ψ ${asked.psi}.` : "reference style.");
    }
  } catch (e) {
    showError(`The server could not be reached: ${e.message}`);
  } finally {
    setBusy(false);
  }
}

async function init() {
  try {
    const res = await fetch("/api/info");
    if (!res.ok) throw new Error(`the server answered ${res.status}`);
    state.info = await res.json();
  } catch (e) {
    showError(`Cannot load the model information: ${e.message}`);
    return;
  }
  const info = state.info;
  $("model-line").textContent = `Model ${info.model}: ${info.img_size} px, domains ${info.domains.join(", ")}.`;
  const sel = $("domain");
  for (const d of info.domains) {
    const o = document.createElement("option");
    o.value = d;
    o.textContent = d;
    sel.appendChild(o);
  }
  $("styles").max = String(info.limits.max_styles);
  const srcBox = $("source-examples");
  for (const e of info.examples) {
    srcBox.appendChild(exampleButton(e, (ex) => setSource({ example: ex.id }, exampleUrl(ex.id))));
  }
  wireDrop("source-drop", "source-file", (f) => setSource({ file: f }, URL.createObjectURL(f)));
  wireDrop("ref-drop", "ref-file", (f) => setRef(state.nextRef, { file: f }, URL.createObjectURL(f)));
  sel.addEventListener("change", renderRefExamples);
  renderRefExamples();
  document.querySelectorAll("input[name=mode]").forEach((r) =>
    r.addEventListener("change", () => {
      $("latent-options").hidden = mode() !== "latent";
      $("reference-options").hidden = mode() !== "reference";
    }),
  );
  $("psi").addEventListener("input", () => {
    $("psi-value").textContent = Number($("psi").value).toFixed(2);
  });
  $("dice").addEventListener("click", () => {
    const seed = Math.floor(Math.random() * 1e9);
    $("seed").value = String(seed);
    $("seed2").value = String(seed + 1);
  });
  $("translate").addEventListener("click", () => post("translate"));
  $("interpolate").addEventListener("click", () => post("interpolate"));
}

document.addEventListener("DOMContentLoaded", init);
