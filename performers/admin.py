from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from performers.models import ChosenKey, Genre, Profile, User


class ProfileInline(admin.StackedInline):
    model = Profile
    can_delete = False
    filter_horizontal = ["genres"]


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    inlines = [ProfileInline]
    list_display = ["username", "email", "is_performer", "is_producer", "is_staff", "date_joined"]
    list_filter = ["is_performer", "is_producer", "is_staff", "is_active"]
    fieldsets = (*(BaseUserAdmin.fieldsets or ()), ("Roles", {"fields": ("is_performer", "is_producer")}))


@admin.register(Genre)
class GenreAdmin(admin.ModelAdmin):
    list_display = ["name", "slug"]
    prepopulated_fields = {"slug": ("name",)}
    search_fields = ["name", "slug"]


@admin.register(ChosenKey)
class ChosenKeyAdmin(admin.ModelAdmin):
    list_display = ["performer", "track", "transpose", "updated_at"]
    raw_id_fields = ["performer", "track"]
