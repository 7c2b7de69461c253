from rest_framework import permissions

from control_tower.tenancy.roles import READ, WRITE


class HasRolePermission(permissions.BasePermission):
    """Reads need `<resource>:read`, everything else `<resource>:write`, by role or key scope.

    Views name their resource (`resource = Resource.SHIPMENTS`); object visibility across
    organizations is not decided here: other organizations' rows are simply not in the queryset
    (404), so this class never leaks whether an object exists elsewhere.
    """

    message = "Your role does not allow this."

    def has_permission(self, request, view) -> bool:
        actor = getattr(view, "actor", None)
        if actor is None:
            return False
        action = READ if request.method in permissions.SAFE_METHODS else WRITE
        action = getattr(view, "action_overrides", {}).get(getattr(view, "action", None), action)
        return actor.can(view.resource, action)
