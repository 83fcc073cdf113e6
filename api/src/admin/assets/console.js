// The console's own few lines: copy buttons (data-copy="#selector").
document.addEventListener("click", (e) => {
  const button = e.target.closest("[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  if (!source) return;
  source.select();
  (navigator.clipboard ? navigator.clipboard.writeText(source.value) : Promise.reject())
    .catch(() => document.execCommand("copy"))
    .finally(() => { button.textContent = "Copied"; });
});
