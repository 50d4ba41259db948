from django.apps import AppConfig


class MembersConfig(AppConfig):
    name = "members"
    verbose_name = "Members"

    def ready(self) -> None:
        from loyalty.core import privacy
        from members import privacy as member_privacy

        privacy.register(section="member", exporter=member_privacy.export_member, eraser=member_privacy.erase_member)
