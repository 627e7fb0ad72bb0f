"""Migration of departmental servers into the cloud center (pure core).

survey -> plan (destinations + waves) -> state per host per step. The
adapters (``playbooks/`` run by ansible-runner from ``cli/migrate.py``, and
``yunshang.openstack.migration`` for the cloud side) only execute what this
package decides.
"""
from yunshang.migration.fit import Flavor, SecurityGroup, SecurityRule, choose_security_groups, fit_flavor
from yunshang.migration.inventory import build_inventory
from yunshang.migration.plan import Destination, MigrationPlan, build_plan, plan_from_dict
from yunshang.migration.state import STEPS, MigrationState, StateStore
from yunshang.migration.survey import Service, Survey, SurveyHost, load_survey, parse_survey
from yunshang.migration.waves import Wave, WaveOptions, find_cycles, plan_waves

__all__ = [
    "Destination", "Flavor", "MigrationPlan", "MigrationState", "STEPS", "SecurityGroup", "SecurityRule",
    "Service", "StateStore", "Survey", "SurveyHost", "Wave", "WaveOptions", "build_inventory", "build_plan",
    "choose_security_groups", "find_cycles", "fit_flavor", "load_survey", "parse_survey", "plan_from_dict",
    "plan_waves",
]
