// ComfyUI-StyleCLIP: the live preview of Edit Sliders.
//
// After the node has run once, moving one of its value sliders posts the slider values to the
// pack's route (POST /styleclip/sliders/preview, nodes/slider_server.py), which renders the node's
// first face from the generator and latents of that run and answers with a JPEG shown on the node.
// Only one request per node is in flight: values that change meanwhile wait, and only the newest
// of them is sent when the answer comes (the last position always renders); an answer older than
// the one shown is dropped. Two buttons save the values as a named preset and load one
// (GET/POST /styleclip/presets). Nothing here changes what the workflow saves or queues.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

const NODE = "StyleCLIP_EditSliders";
const SLIDERS = 4;
const CLIENT = Math.random().toString(36).slice(2, 12); // this tab: the server orders each tab's requests apart

function connectedValues(node) {
  // one value per connected direction, in slider order (what the node's run used)
  const values = [];
  for (let k = 1; k <= SLIDERS; k++) {
    const input = node.inputs?.find((i) => i.name === `direction_${k}`);
    const widget = node.widgets?.find((w) => w.name === `value_${k}`);
    if (input && input.link != null && widget) values.push(Number(widget.value));
  }
  return values;
}

function previewSize(node) {
  const w = node.widgets?.find((x) => x.name === "preview_size");
  return Number(w?.value ?? 256);
}

class LivePreview {
  constructor(node) {
    this.node = node;
    this.ready = false; // the node has run: the server holds its edit
    this.inFlight = false;
    this.pending = null; // the newest values not sent yet
    this.seq = 0;
    this.shownSeq = -1;
    this.stats = []; // ms from a value change to its image being shown (newest last)
    this.img = document.createElement("img");
    this.img.style.width = "100%";
    this.img.style.objectFit = "contain";
    this.img.dataset.styleclip = "slider-preview";
    const widget = node.addDOMWidget("slider_preview", "styleclip_preview", this.img, {
      serialize: false,
      hideOnZoom: false,
      getMinHeight: () => 200,
    });
    widget.serialize = false;
    this.widget = widget;
  }

  request(changedAt = performance.now()) {
    if (!this.ready) return;
    this.pending = { values: connectedValues(this.node), size: previewSize(this.node), changedAt };
    if (!this.inFlight) this.sendPending();
  }

  async sendPending() {
    const job = this.pending;
    this.pending = null;
    if (!job) return;
    this.inFlight = true;
    const seq = ++this.seq;
    try {
      const response = await api.fetchApi("/styleclip/sliders/preview", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ node: String(this.node.id), values: job.values, size: job.size, seq, client: CLIENT }),
      });
      if (response.status === 200 && seq > this.shownSeq) {
        const blob = await response.blob();
        const old = this.img.src;
        await new Promise((resolve) => {
          this.img.onload = resolve;
          this.img.onerror = resolve;
          this.img.src = URL.createObjectURL(blob);
        });
        if (old && old.startsWith("blob:")) URL.revokeObjectURL(old);
        this.shownSeq = seq;
        this.img.dataset.seq = String(seq);
        this.img.dataset.values = JSON.stringify(job.values);
        this.stats.push(performance.now() - job.changedAt);
        this.node.setDirtyCanvas?.(true, true);
      } else if (response.status === 404) {
        this.ready = false; // the server forgot the edit (restart, or another run replaced it): queue again
      }
    } catch (e) {
      console.warn("StyleCLIP slider preview failed", e);
    } finally {
      this.inFlight = false;
      if (this.pending) this.sendPending();
    }
  }
}

async function savePreset(node) {
  const name = window.prompt("Save the slider values as preset:", "");
  if (!name) return;
  const labels = node._styleclipLabels ?? [];
  const body = (overwrite) => JSON.stringify({ values: connectedValues(node), labels, overwrite });
  let r = await api.fetchApi(`/styleclip/presets/${encodeURIComponent(name)}`, { method: "POST", headers: { "Content-Type": "application/json" }, body: body(false) });
  if (r.status === 409 && window.confirm(`A preset named "${name}" exists. Replace it?`)) {
    r = await api.fetchApi(`/styleclip/presets/${encodeURIComponent(name)}`, { method: "POST", headers: { "Content-Type": "application/json" }, body: body(true) });
  }
  if (r.status !== 200) window.alert((await r.json()).error ?? `saving the preset failed (${r.status})`);
}

async function loadPreset(node) {
  const list = (await (await api.fetchApi("/styleclip/presets")).json()).presets ?? [];
  if (!list.length) return window.alert("No slider presets saved yet.");
  const name = window.prompt(`Load which preset?\n${list.join("\n")}`, list[0]);
  if (!name) return;
  const r = await api.fetchApi(`/styleclip/presets/${encodeURIComponent(name)}`);
  const data = await r.json();
  if (r.status !== 200) return window.alert(data.error ?? `loading the preset failed (${r.status})`);
  let i = 0;
  for (let k = 1; k <= SLIDERS; k++) {
    const input = node.inputs?.find((x) => x.name === `direction_${k}`);
    const widget = node.widgets?.find((w) => w.name === `value_${k}`);
    if (input && input.link != null && widget && i < data.values.length) widget.value = data.values[i++];
  }
  node._styleclipPreview?.request();
  node.setDirtyCanvas?.(true, true);
}

app.registerExtension({
  name: "ComfyUI-StyleCLIP.EditSliders",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData?.name !== NODE) return;
    const created = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const r = created?.apply(this, arguments);
      const preview = new LivePreview(this);
      this._styleclipPreview = preview;
      for (const w of this.widgets ?? []) {
        if (!/^value_\d$/.test(w.name) && w.name !== "preview_size") continue;
        const callback = w.callback;
        w.callback = function () {
          const out = callback?.apply(this, arguments);
          preview.request();
          return out;
        };
      }
      for (const [label, action] of [["save preset", savePreset], ["load preset", loadPreset]]) {
        const button = this.addWidget("button", label, null, () => action(this));
        button.serialize = false;
      }
      return r;
    };
    const executed = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (output) {
      const r = executed?.apply(this, arguments);
      const info = output?.styleclip_sliders?.[0];
      if (info) {
        this._styleclipLabels = info.labels;
        this._styleclipPreview.ready = true;
        this._styleclipPreview.request();
      }
      return r;
    };
  },
});
