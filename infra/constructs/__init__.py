"""CDK constructs, one per concern. Stacks only wire them; each validates its props first.

Construct conventions (follow them for every new construct, e.g. the Serving stack's):

1. Signature: ``Construct(scope, construct_id, *, props: <Name>Props, <CDK objects it wires to>)``.
   The CDK objects are what it attaches to or grants on (VPC, subnets, security groups, keys,
   buckets, roles, the boundary); everything else (names, numbers, switches) is in the props.
2. Props: ``@dataclass(frozen=True, kw_only=True)`` next to the construct, holding exactly what it
   needs. A field whose default is a security decision has a docstring that starts with "Secure
   default:" and says what the default does and when to change it; a fact the stage owns (a name,
   a lifecycle period) has no default, so the construct never holds a second copy of it.
3. Validation: ``__post_init__`` rejects invalid values and combinations before any resource exists,
   raising ``infra.constructs.props.PropsError(props, field, problem)``, which prints the props
   class, the field, its value and the fix. Shared checks live in ``infra.constructs.props``.
   Checks that need the stack (its environment, for instance) run first thing in ``__init__``.
4. No stage: a construct never imports ``stage.Stage`` nor any function that takes one (the name
   functions of ``stage.names`` and ``pipelines.settings``); constants such as
   ``stage.names.ALL_BUCKETS`` and value types such as ``DatasetSchema`` are fine.
   ``tests/infra/test_infra_constructs.py`` fails the build otherwise.
5. Stacks read the stage: ``infra/stacks/stage_props.py`` has one ``<construct>_props(stage, ...)``
   per construct, taking names from ``stage.names`` (and ``pipelines.settings``);
   ``infra.app.build_stacks`` turns a ``PropsError`` into the stage's ``ConfigError``.
6. Exposure: everything a construct creates is an attribute, listed in its class docstring.
7. Tests: per construct, an invalid props combination raises with its message, and a minimal stack
   with default props proves each "Secure default:" by fine-grained template assertions
   (``tests/infra/test_infra_constructs.py``). Logical ids of stateful resources never change: keep
   construct ids as they are when refactoring.
8. Typed wiring: values that stand in for placeholders travel as typed objects, never as string
   keys (``pipeline.DeployedResources`` has one field per ``pipelines.settings.PipelineResources``
   field, checked at import).

The control ids the modules cite (D1b, N6, T6, ...) are those of ``docs/controls.md``.
"""
