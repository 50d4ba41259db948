"""Portal forms: they carry the validation; a service's refusal becomes an error on the field it
concerns (``apply_error``)."""

from __future__ import annotations

import uuid

from django import forms
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.forms import AuthenticationForm

from loyalty.core.errors import ApplicationError
from members.models import ConsentChannel, ConsentPurpose, Member
from members.services import member_profile_validate

# Each consent the portal asks for, in the words the member reads (the wording version in
# settings.PORTAL_CONSENT_WORDING_VERSION names this text). Marketing is asked per channel;
# the other purposes do not depend on a channel.
CONSENT_OPTIONS: list[tuple[str, str, str]] = [
    (ConsentPurpose.MARKETING, ConsentChannel.EMAIL, "Send me offers and news by email"),
    (ConsentPurpose.MARKETING, ConsentChannel.SMS, "Send me offers and news by text message (SMS)"),
    (ConsentPurpose.MARKETING, ConsentChannel.PUSH, "Send me offers and news as app notifications"),
    (ConsentPurpose.PERSONALIZATION, ConsentChannel.ANY, "Choose offers for me from what I buy"),
    (ConsentPurpose.PROFILING, ConsentChannel.ANY, "Use my purchases in analytics and customer profiles"),
    (
        ConsentPurpose.PARTNER_SHARING,
        ConsentChannel.ANY,
        "Let every partner of the program see my balance and let me spend points there",
    ),
]
# errors a service may raise, by code -> the form field they belong to
FIELD_OF_CODE = {
    "email_taken": "email",
    "invalid_email": "email",
    "wrong_password": "password",
}


# refusals said in the member's words where the service's message is written for a partner or staff
MEMBER_WORDS_OF_CODE = {
    "insufficient_points": "You do not have enough points for this yet.",
    "member_inactive": "Your membership is not active: contact customer service.",
    "idempotency_key_reused": "Please confirm again.",
}


def consent_field_name(purpose: str, channel: str) -> str:
    return f"consent_{purpose}_{channel or 'any'}"


def apply_error(form: forms.Form, error: ApplicationError) -> None:
    """Put a service's error on the form: on the fields it names, else on the field its code
    belongs to, else on the form."""
    if error.fields:
        for name, messages in error.fields.items():
            form.add_error(name if name in form.fields else None, messages)
        return
    field = FIELD_OF_CODE.get(error.code)
    form.add_error(field if field in form.fields else None, MEMBER_WORDS_OF_CODE.get(error.code, error.message))


class ConsentFieldsMixin:
    """One unticked checkbox per purpose and channel."""

    def add_consent_fields(self, initial: dict[tuple[str, str], bool] | None = None) -> None:
        for purpose, channel, label in CONSENT_OPTIONS:
            name = consent_field_name(purpose, channel)
            self.fields[name] = forms.BooleanField(
                label=label, required=False, initial=(initial or {}).get((purpose, channel), False)
            )

    def consent_values(self) -> dict[tuple[str, str], bool]:
        return {
            (str(purpose), str(channel)): bool(self.cleaned_data.get(consent_field_name(purpose, channel)))
            for purpose, channel, _label in CONSENT_OPTIONS
        }

    def consent_fields(self) -> list:
        return [self[consent_field_name(p, c)] for p, c, _ in CONSENT_OPTIONS]


class JoinForm(ConsentFieldsMixin, forms.Form):
    first_name = forms.CharField(max_length=100)
    last_name = forms.CharField(max_length=100, required=False)
    email = forms.EmailField()
    password = forms.CharField(widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}), strip=False)
    password_again = forms.CharField(
        label="Password again", widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}), strip=False
    )
    referral_code = forms.CharField(
        label="A friend's referral code (optional)", max_length=40, required=False
    )  # checked by the enrollment (engagement.services.referrals.referral_referrer)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["first_name"].widget.attrs["autocomplete"] = "given-name"
        self.fields["last_name"].widget.attrs["autocomplete"] = "family-name"
        self.fields["email"].widget.attrs["autocomplete"] = "email"
        self.fields["password"].help_text = password_validation.password_validators_help_text_html()
        self.add_consent_fields()

    def clean_email(self):
        email = self.cleaned_data["email"].strip().lower()
        try:
            member_profile_validate(values={"email": email})
        except ApplicationError as error:
            raise forms.ValidationError(error.message, code=error.code) from None
        return email

    def clean(self):
        cleaned = super().clean()
        password, again = cleaned.get("password"), cleaned.get("password_again")
        if password and again and password != again:
            self.add_error("password_again", "The two passwords are not the same.")
        if password and cleaned.get("email"):
            probe = get_user_model()(
                username=cleaned["email"], email=cleaned["email"], first_name=cleaned.get("first_name", "")
            )
            try:
                password_validation.validate_password(password, probe)
            except forms.ValidationError as error:
                self.add_error("password", error)
        return cleaned


class LoginForm(AuthenticationForm):
    """Sign in with the email (or the username of an older login); email case does not matter."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["username"].label = "Email or username"
        self.fields["username"].widget.attrs["autocomplete"] = "username"

    def clean_username(self):
        username = self.cleaned_data.get("username", "").strip()
        return username.lower() if "@" in username else username


class ProfileForm(forms.Form):
    """The member's own profile; checked by ``member_profile_validate`` as the service will."""

    first_name = forms.CharField(max_length=100, required=False)
    last_name = forms.CharField(max_length=100, required=False)
    email = forms.EmailField()
    phone = forms.CharField(max_length=32, required=False)
    birth_date = forms.DateField(required=False, label="Birth date", widget=forms.DateInput(attrs={"type": "date"}))
    postal_code = forms.CharField(max_length=20, required=False, label="Postal code")
    country = forms.CharField(max_length=2, min_length=2, required=False, label="Country (2 letters, e.g. US)")

    AUTOCOMPLETE = {
        "first_name": "given-name",
        "last_name": "family-name",
        "email": "email",
        "phone": "tel",
        "birth_date": "bday",
        "postal_code": "postal-code",
        "country": "country",
    }

    def __init__(self, *args, member: Member, **kwargs):
        kwargs.setdefault("initial", {name: getattr(member, name) for name in self.base_fields})
        super().__init__(*args, **kwargs)
        self.member = member
        for name, value in self.AUTOCOMPLETE.items():
            self.fields[name].widget.attrs["autocomplete"] = value

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            return member_profile_validate(values=cleaned, member=self.member)
        except ApplicationError as error:
            apply_error(self, error)
        return cleaned

    def changes(self) -> dict:
        return {name: self.cleaned_data[name] for name in self.changed_data}


class ConsentForm(ConsentFieldsMixin, forms.Form):
    def __init__(self, *args, current: dict[tuple[str, str], bool], **kwargs):
        super().__init__(*args, **kwargs)
        self.add_consent_fields(initial=current)


class HistoryFilterForm(forms.Form):
    kind = forms.ChoiceField(required=False, label="Kind")
    since = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, kinds: dict[str, str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = [("", "All")] + list(kinds.items())

    def clean(self):
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since > until:
            self.add_error("until", "The end date is before the start date.")
        return cleaned


class ConfirmWithPasswordForm(forms.Form):
    password = forms.CharField(
        label="Your password", widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}), strip=False
    )
    confirm = forms.BooleanField(label="I understand this cannot be undone here", required=True)


class OnceForm(forms.Form):
    """A confirmation that acts once: the page hands out a fresh random ``token`` and the action
    uses it as its idempotency key, so a double submit (or a resent form) does it once."""

    token = forms.RegexField(regex=r"^[0-9a-f]{32}$", widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("initial", {"token": uuid.uuid4().hex})
        super().__init__(*args, **kwargs)

    def idempotency_key(self, *, member: Member, action: str) -> str:
        """The key the service stores: the member and action named, so no token can reach another's."""
        return f"portal:{action}:{member.pk}:{self.cleaned_data['token']}"
