// Progressive enhancement only: the page works the same without this file.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // After a submission with mistakes, take keyboard and screen-reader users to the list of them.
  document.getElementById("error-summary")?.focus();

  // The example links fill the form in place instead of loading the page again.
  for (const link of document.querySelectorAll("a[data-example]")) {
    link.addEventListener("click", (event) => {
      event.preventDefault();
      for (const [name, value] of Object.entries(JSON.parse(link.dataset.example))) {
        const input = document.getElementById(name);
        if (!input) continue;
        input.value = value;
        input.removeAttribute("aria-invalid");
        input.closest(".field")?.classList.remove("field-error");
        document.getElementById(`${name}-error`)?.remove();
      }
      document.querySelector("form button[type=submit]")?.focus();
    });
  }
});
