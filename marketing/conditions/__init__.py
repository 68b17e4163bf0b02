"""One condition language for the whole product: JsonLogic, plus a few registered operators.

``evaluate`` runs a rule in Python against a contact's facts (``facts.contact_facts``);
``to_q`` compiles the same rule to a Django ``Q`` over all contacts; ``validate`` rejects a rule
that names an unknown operator or field before it is saved. See
docs/conditions.md.
"""

from marketing.conditions.engine import ConditionError, Prepared, evaluate, prepare, truthy
from marketing.conditions.facts import contact_facts, event_facts, reads_contact, reads_names
from marketing.conditions.fields import namespace_fields, namespace_fields_register
from marketing.conditions.operators import ConditionOperator, condition_operator, operators
from marketing.conditions.sql import NotCompilable, to_q
from marketing.conditions.validation import register_namespace, rule_errors, validate

__all__ = [
    "ConditionError",
    "ConditionOperator",
    "NotCompilable",
    "Prepared",
    "condition_operator",
    "contact_facts",
    "evaluate",
    "event_facts",
    "namespace_fields",
    "namespace_fields_register",
    "operators",
    "prepare",
    "reads_contact",
    "reads_names",
    "register_namespace",
    "rule_errors",
    "to_q",
    "truthy",
    "validate",
]
