// Progressive enhancement only: every page works without this file.
(function () {
  "use strict";

  // Options menu: keep aria-expanded in step, close on Escape or a click elsewhere.
  document.querySelectorAll("details[data-menu]").forEach(function (menu) {
    var summary = menu.querySelector("summary");
    var sync = function () {
      summary.setAttribute("aria-expanded", menu.open ? "true" : "false");
    };
    sync();
    menu.addEventListener("toggle", sync);
    menu.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && menu.open) {
        menu.open = false;
        summary.focus();
      }
    });
    document.addEventListener("click", function (event) {
      if (menu.open && !menu.contains(event.target)) {
        menu.open = false;
      }
    });
  });

  // The guided tour: bring the next step's note into view and move focus to it.
  var callout = document.querySelector("[data-tour-callout]");
  if (callout) {
    callout.scrollIntoView({ block: "center" });
    callout.focus({ preventScroll: true });
  }

  // The code sheet: Print and Copy need JavaScript, so they stay hidden without it.
  var codes = document.getElementById("codes");
  if (!codes) {
    return;
  }
  var status = document.querySelector("[data-copy-status]");
  var printButton = document.querySelector("[data-action=print]");
  var copyButton = document.querySelector("[data-action=copy]");

  printButton.hidden = false;
  printButton.addEventListener("click", function () {
    window.print();
  });

  if (navigator.clipboard && window.isSecureContext) {
    copyButton.hidden = false;
    copyButton.addEventListener("click", function () {
      var lines = ["Sparekey backup codes for " + codes.dataset.account + " (set " + codes.dataset.set + ")"];
      codes.querySelectorAll(".code").forEach(function (item, index) {
        lines.push(index + 1 + ". " + item.querySelector(".code-value").textContent.trim());
      });
      navigator.clipboard.writeText(lines.join("\n") + "\n").then(
        function () {
          status.textContent = "Copied all 10 codes.";
        },
        function () {
          status.textContent = "Could not copy. Select the codes and copy them by hand.";
        }
      );
    });
  }
})();
