// Member portal: small progressive enhancements only; every page works without this file.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // The one-time code's remaining validity, counted down on the card page.
  for (const el of document.querySelectorAll("[data-expires-in]")) {
    const until = Date.now() + Number(el.dataset.expiresIn) * 1000;
    const tick = () => {
      const left = Math.max(0, Math.round((until - Date.now()) / 1000));
      el.textContent = left > 0
        ? `Valid for ${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")} more.`
        : "This code has expired: ask for a new one.";
      if (left > 0) window.setTimeout(tick, 1000);
    };
    tick();
  }
});
