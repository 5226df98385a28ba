// ComfyUI-StyleCLIP: this pack's workflow templates in the template browser in their numbered order.
//
// ComfyUI (0.3.64, app/custom_node_manager.py, GET /workflow_templates) lists a pack's templates in
// the directory order of its workflows folder (glob, unsorted: on ext4 a hash order), and the
// frontend (1.27.10, workflowTemplatesStore) shows a custom node's templates in the order it gets
// them. This sorts this pack's list by file name ("01_...", "02_...", ...), numbers compared as
// numbers, and leaves every other pack's list as the server sent it. Where the frontend has no
// api.getWorkflowTemplates any more it does nothing.
import { api } from "../../scripts/api.js";

const parts = new URL(import.meta.url).pathname.split("/");
const at = parts.lastIndexOf("extensions");
const pack = at >= 0 ? decodeURIComponent(parts[at + 1] ?? "") : "";
const list = typeof api?.getWorkflowTemplates === "function" ? api.getWorkflowTemplates.bind(api) : null;

if (pack && list) {
  api.getWorkflowTemplates = async (...args) => {
    const templates = await list(...args);
    if (Array.isArray(templates?.[pack])) {
      templates[pack] = [...templates[pack]].sort((a, b) => String(a).localeCompare(String(b), undefined, { numeric: true }));
    }
    return templates;
  };
}
