import json

from django.db import migrations, models


def body_to_bytes(apps, schema_editor) -> None:
    """Answers stored before: their JSON as DRF's JSONRenderer writes it (compact, UTF-8)."""
    record_model = apps.get_model("core", "IdempotencyRecord")
    for record in record_model.objects.filter(response_body__isnull=False).iterator():
        content = json.dumps(record.response_body, ensure_ascii=False, separators=(",", ":")).encode()
        record_model.objects.filter(pk=record.pk).update(response_content=content)


class Migration(migrations.Migration):
    dependencies = [("core", "0003_config_stamp")]

    operations = [
        migrations.AddField(
            model_name="idempotencyrecord",
            name="response_content",
            field=models.BinaryField(blank=True, null=True),
        ),
        migrations.RunPython(body_to_bytes, migrations.RunPython.noop),
        migrations.RemoveField(model_name="idempotencyrecord", name="response_body"),
    ]
