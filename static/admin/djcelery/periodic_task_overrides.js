/* django-celery-beat's periodic task form: show a crontab's reading under the crontab field.
 * (Was an inline script in the library's template; a file, so Content-Security-Policy can forbid
 * inline scripts.) */
(function () {
  "use strict";
  var $ = django.jQuery;
  var script = document.getElementById("periodic-task-overrides");
  var readableCrontabs = JSON.parse(document.getElementById("readable-crontabs").textContent);
  var originalCrontabHelp = script.getAttribute("data-crontab-help") || "";

  function updateCrontabHelp(additional) {
    var help = $(".field-crontab .help");
    help.text(originalCrontabHelp);
    help.append(document.createElement("br"));
    help.append(document.createTextNode("Translation: " + (additional || "")));
  }

  $(function () {
    $(".field-crontab_translation").hide();
    $(".field-crontab").change(function () {
      updateCrontabHelp(readableCrontabs[$("#id_crontab").val()]);
    });
  });
})();
