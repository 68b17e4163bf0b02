/*
 * Publishing from the canvas when runs are running: the console's publish page asks what happens
 * to them (stay on their version, or move). It is the answer of the admin's "publish" action,
 * posted to the change list for this one workflow, as the page's own "Publish" button does.
 */

function csrfToken() {
  const input = document.querySelector("[name=csrfmiddlewaretoken]");
  return input ? input.value : "";
}

/* Leaves the page for the publish page of workflow `workflowId`. */
export function publishPageOpen(workflowId) {
  const button = document.querySelector(".workflow-actions input[name=action][value=publish]");
  const form = document.createElement("form");
  form.method = "post";
  // The change page is …/workflow/<id>/change/; its change list is …/workflow/.
  form.action = button?.form?.getAttribute("action") || window.location.pathname.replace(/[^/]+\/change\/?$/, "");
  const fields = { csrfmiddlewaretoken: csrfToken(), action: "publish", _selected_action: workflowId, _from_change_page: "1" };
  Object.entries(fields).forEach(([name, value]) => {
    const input = document.createElement("input");
    input.type = "hidden";
    input.name = name;
    input.value = value;
    form.appendChild(input);
  });
  document.body.appendChild(form);
  form.submit();
}
