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

// Invite friends: share the referral link with the Web Share API where the browser has it, else copy it.
document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("[data-share-link]")) {
    const status = document.querySelector(button.dataset.shareTarget || "#share-status");
    const say = (text) => { if (status) status.textContent = text; };
    const link = button.dataset.shareLink;
    if (!navigator.share) button.textContent = "Copy my link";
    button.addEventListener("click", async () => {
      if (navigator.share) {
        try {
          await navigator.share({ title: document.title, text: button.dataset.shareText || "", url: link });
          say("Shared.");
        } catch (error) {
          if (error && error.name !== "AbortError") say("Could not share: copy the link above.");
        }
        return;
      }
      try {
        await navigator.clipboard.writeText(link);
        say("Link copied.");
      } catch (error) {
        const field = document.getElementById("referral-link");
        if (field) { field.select(); }
        say("Select the link above and copy it.");
      }
    });
  }
});
