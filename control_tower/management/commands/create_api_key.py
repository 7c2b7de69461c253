from control_tower import services
from control_tower.models import Membership
from control_tower.tenancy.actors import actor_for_membership
from control_tower.tenancy.commands import OrganizationCommand
from control_tower.tenancy.roles import Role, Scope


class Command(OrganizationCommand):
    help = "Issue an API key for an organization and print it (it is shown only once)."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--name", default="cli")
        parser.add_argument(
            "--scope",
            action="append",
            dest="scopes",
            choices=Scope.values,
            help="Repeat for several scopes; default: all scopes.",
        )

    def handle_in_organization(self, organization, *args, **options):
        owner = Membership.objects.filter(role=Role.OWNER).select_related("user").first()
        if owner is None:
            from control_tower.tenancy.actors import Actor

            actor = Actor(organization=organization, role=Role.OWNER)
        else:
            actor = actor_for_membership(owner)
        _key, raw = services.api_key_create(
            actor=actor, name=options["name"], scopes=options["scopes"] or list(Scope.values)
        )
        self.stdout.write(raw)
