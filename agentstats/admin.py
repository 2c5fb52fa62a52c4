"""Admin for users: the support flag next to Django's own fields."""

from django.contrib import admin
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
