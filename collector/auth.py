"""Bearer runner tokens and who may read which project.

Runner tokens upload runs and read their own project's runs, policies and coverage; policy tokens (shipped in apps)
read policies only; dashboard users (Django login) read the projects they are members of.
"""
from datetime import timedelta

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

from .models import Project, RunnerToken


class TokenPrincipal:
    """The request.user of a token-authenticated request: a project's runner, not a person."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False
    is_superuser = False

    def __init__(self, token: RunnerToken):
        self.token = token
        self.project = token.project

    def __str__(self):
        return f"token {self.token}"


class RunnerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <token>'.")
        try:
            raw = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Token is not valid.")
        token = (
            RunnerToken.objects.select_related("project")
            .filter(key_hash=RunnerToken.hash(raw), revoked_at__isnull=True)
            .first()
        )
        if token is None:
            raise exceptions.AuthenticationFailed("Token is not valid or has been revoked.")
        now = timezone.now()
        # Record use at most once a minute: a write per upload would cost more than the upload's own rows.
        if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
            RunnerToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return TokenPrincipal(token), token

    def authenticate_header(self, request):
        return self.keyword  # makes DRF answer 401 (not 403) to a request without credentials


class RunnerTokenScheme(OpenApiAuthenticationExtension):
    """Tells the OpenAPI schema that runner and policy tokens are bearer tokens."""

    target_class = "collector.auth.RunnerTokenAuthentication"
    name = "runnerToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "Runner or policy token (create_runner_token)"}


def visible_projects(request):
    """Projects the caller may read."""
    user = request.user
    if isinstance(user, TokenPrincipal):
        return Project.objects.filter(pk=user.project.pk)
    if user.is_superuser:
        return Project.objects.all()
    return Project.objects.filter(members=user)


def token_kind(request):
    return request.auth.kind if isinstance(request.auth, RunnerToken) else None


class ProjectReader(permissions.BasePermission):
    """Runner tokens and logged-in users; policy tokens are refused (they may read policies only)."""

    message = "This token may only read policies."

    def has_permission(self, request, view):
        if not (request.user and request.user.is_authenticated):
            return False
        return token_kind(request) in (None, RunnerToken.RUNNER)


class Runner(permissions.BasePermission):
    """Only a runner token may upload runs."""

    message = "Uploading runs needs a runner token."

    def has_permission(self, request, view):
        return token_kind(request) == RunnerToken.RUNNER


class PolicyReader(permissions.BasePermission):
    """Any valid token of the project, or a logged-in member."""

    def has_permission(self, request, view):
        return bool(request.user and request.user.is_authenticated)
