import factory
from django.contrib.auth import get_user_model

from members.models import EnrollmentSource
from members.services import member_enroll


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    password = factory.django.Password("pw-123456")


class StaffFactory(UserFactory):
    is_staff = True
    is_superuser = True


class MemberFactory(factory.Factory):
    """Builds members through ``member_enroll`` so tests see what production sees."""

    class Meta:
        model = dict

    email = factory.Sequence(lambda n: f"member{n}@example.com")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    source = EnrollmentSource.STAFF

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return member_enroll(**kwargs)

    @classmethod
    def _build(cls, model_class, *args, **kwargs):
        return member_enroll(**kwargs)
