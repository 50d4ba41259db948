from django.apps import AppConfig


class SegmentsConfig(AppConfig):
    name = "segments"
    label = "segments"
    verbose_name = "Segments"

    def ready(self) -> None:
        from loyalty.core import privacy
        from segments import privacy as segment_privacy

        privacy.register(
            section="segments", exporter=segment_privacy.export_member, eraser=segment_privacy.erase_member
        )
