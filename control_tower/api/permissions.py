from rest_framework import permissions

from control_tower.tenancy.roles import READ, WRITE


class HasRolePermission(permissions.BasePermission):
    """Reads need `<resource>:read`, everything else `<resource>:write`, by role or key scope.

    Views name their resource (`resource = Resource.SHIPMENTS`), and a viewset action that
    belongs to another resource names it in `action_resources` (the stops API's `reassign` is a
    console write). The grants themselves are the one table of tenancy/roles.py. Object
    visibility is not decided here: other organizations' and carriers' rows are simply not in
    the queryset (404), so this class never leaks whether an object exists elsewhere.
    """

    message = "Your role does not allow this."

    def has_permission(self, request, view) -> bool:
        actor = getattr(view, "actor", None)
        if actor is None:
            return False
        action = READ if request.method in permissions.SAFE_METHODS else WRITE
        view_action = getattr(view, "action", None)
        action = getattr(view, "action_overrides", {}).get(view_action, action)
        resource = getattr(view, "action_resources", {}).get(view_action, view.resource)
        return actor.can(resource, action)
