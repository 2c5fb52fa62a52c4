"""Admin for users (the support flag next to Django's own fields) and the admin site's
entry to the fleet dashboard, which support users may sign in for."""

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from rest_framework.authtoken.models import TokenProxy

from agentstats.models import User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "email", "is_staff", "is_support", "is_active")
    list_filter = ("is_staff", "is_support", "is_active")
    readonly_fields = ("uuid",)
    fieldsets = (
        *(DjangoUserAdmin.fieldsets or ()),
        ("agentstats", {"fields": ("uuid", "is_support")}),
    )


# A token's primary key is the key itself, so any admin page of tokens would print it
# (in links and checkboxes). Tokens are managed with `manage.py drf_create_token [-r]`.
admin.site.unregister(TokenProxy)


class FleetReaderLoginForm(AdminAuthenticationForm):
    """The admin login form, open to active support users too.

    Signing in grants nothing by itself: the fleet dashboard admits support users, while
    every other admin page still checks `is_staff` (AdminSite.has_permission).
    """

    def confirm_login_allowed(self, user: User) -> None:
        if user.is_active and user.is_support:
            return
        super().confirm_login_allowed(user)


admin.site.login_form = FleetReaderLoginForm
# Both add a link to the fleet dashboard (/admin/fleet/) to Django's own pages.
admin.site.login_template = "admin/fleet/login.html"
admin.site.index_template = "admin/fleet/index.html"
