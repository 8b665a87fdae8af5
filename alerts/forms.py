"""The notification settings form that project members fill in on the alerts pages (alerts.views.notifications).

The webhook secret is write-only: the form has no field bound to the stored value, only a new secret typed in (blank
keeps the stored one) or a request to generate one. A generated secret is left in ``generated_secret`` by
:meth:`~NotificationSettingsForm.save` for the page to show once; it is never rendered again.
"""
import secrets
from urllib.parse import urlsplit

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email

from .models import NotificationSettings
from .notify import private_address

SCHEMES = ("http", "https")
MIN_SECRET_LENGTH = 16


def validate_webhook_url(value: str):
    # The model's URLField also accepts ftp(s)://, which the webhook's requests.post cannot deliver to.
    scheme = urlsplit(value).scheme.lower()
    if scheme not in SCHEMES:
        refused = f", not {scheme}:" if scheme else ""
        raise ValidationError(f"Webhook URL must start with http:// or https://{refused}.", code="scheme")
    URLValidator(schemes=SCHEMES, message="Webhook URL is not a valid address, e.g. "
                                          "https://hooks.example.com/perfboard.")(value)
    if (address := private_address(value, resolve=False)) is not None:  # delivery checks resolved names too
        raise ValidationError(f"Webhook URL must be a public address, not {address}.", code="private")


class WebhookURLField(forms.URLField):
    default_validators = []  # validate_webhook_url instead: one message that names the field and the scheme


def new_secret() -> str:
    return secrets.token_urlsafe(32)


class NotificationSettingsForm(forms.ModelForm):
    webhook_url = WebhookURLField(required=False, label="Webhook URL", max_length=200, assume_scheme="https",
                                  validators=[validate_webhook_url], widget=forms.URLInput(
                                      attrs={"size": 60, "placeholder": "https://hooks.example.com/perfboard"}))
    email_recipients = forms.CharField(required=False, label="E-mail recipients", widget=forms.Textarea(
        attrs={"rows": 4, "cols": 50}), help_text="One address per line, or separated by commas.")
    secret = forms.CharField(
        required=False, label="New webhook secret", min_length=MIN_SECRET_LENGTH, max_length=200,
        # render_value=False: a typed secret is not echoed back when the form has errors. new-password: browsers
        # must not autofill the user's login password here.
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=f"At least {MIN_SECRET_LENGTH} characters. Leave blank to keep the current secret.")
    generate_secret = forms.BooleanField(required=False, label="Generate a new secret (shown once)")

    class Meta:
        model = NotificationSettings
        fields = ["webhook_url", "email_recipients"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.stored_secret = self.instance.webhook_secret  # read before the form touches the instance

    def clean_email_recipients(self) -> str:
        """One address per line, each checked; the error names every bad one."""
        text = self.cleaned_data["email_recipients"]
        addresses = NotificationSettings(email_recipients=text).recipients()  # the same split the e-mail task uses
        bad = []
        for address in addresses:
            try:
                validate_email(address)
            except ValidationError:
                bad.append(address)
        if bad:
            raise ValidationError(
                "Not " + ("a valid e-mail address" if len(bad) == 1 else "valid e-mail addresses") + ": "
                + ", ".join(f"“{a}”" for a in bad) + ".", code="invalid")
        return "\n".join(dict.fromkeys(addresses))  # repeats dropped: one e-mail per address

    def clean(self):
        data = super().clean()
        if data.get("secret") and data.get("generate_secret"):
            self.add_error("generate_secret", "Type a new secret or generate one, not both.")
        return data

    def save(self, commit=True) -> NotificationSettings:
        """Store the settings. A secret generated now is left in ``generated_secret``, for the page to show once."""
        conf = super().save(commit=False)  # webhook_secret is not a form field: the stored one stays unless below
        self.generated_secret = None
        if self.cleaned_data["secret"]:
            conf.webhook_secret = self.cleaned_data["secret"]
        elif self.cleaned_data["generate_secret"] or (conf.webhook_url and not self.stored_secret):
            # A webhook without a secret is not stored: receivers verify X-Perfboard-Signature, and an HMAC with an
            # empty key is one anybody can compute, so it would prove nothing. Generated rather than refused so the
            # secret is a strong random one rather than whatever a member types to get past the form.
            self.generated_secret = conf.webhook_secret = new_secret()
        if commit:
            conf.save()
        return conf
