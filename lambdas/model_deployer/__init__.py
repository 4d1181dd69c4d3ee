"""Model deployer Lambdas: the tasks of the deploy-on-approval state machine.

Deployed as package ``model_deployer``, one function per task, with handlers
``model_deployer.handler.<task>`` (``rookery_contracts.deployer.Task``). ``settings`` lists the
environment; ``registry``, ``stack`` and ``endpoint`` read and change AWS; ``flow`` is the pure
state logic over what they read, built on ``rookery_contracts.deployment`` (the decision the local
endpoint takes too).

Why the design holds with CloudFormation as the only writer of the endpoint:

- **Convergence.** A deployment is never driven by the event that started it: every execution
  re-reads the whole registry (all pages, explicit descending sort) and the Serving stack's
  ``ApprovedModelPackageArn`` and moves the stack towards the highest approved version. Duplicate,
  stale and out-of-order events therefore decide the same thing; one that finds the stack already
  there publishes "no change".
- **One deployment at a time per endpoint.** The Serving stack is the lock: CloudFormation runs
  one update of a stack at a time and refuses a second with an "... _IN_PROGRESS state and can not
  be updated" error. An execution that finds the stack busy (``*_IN_PROGRESS``) before its update,
  or whose ``UpdateStack`` is refused as busy, waits and decides again, a bounded number of times.
- **Racing executions converge.** Two executions that decide at the same moment both call
  ``UpdateStack``; one wins, the loser is refused as busy, waits out the winner's deployment,
  decides again and finds nothing to do (or a version approved meanwhile, which it then deploys).
  One whose update CloudFormation answers "No updates are to be performed" decides again at once.
  An execution follows its own update by the ``ClientRequestToken`` it passed (CloudFormation stamps
  every event of the operation, rollback included, with it), so an update another execution starts
  right after it ends is never taken for its own; when that later update has already replaced the
  version on the endpoint, the outcome says so instead of calling the finished update a failure.
  After every successful deployment the execution decides once more before it ends, so an
  approval that arrived while it deployed, or a decision that went stale in the moment between
  deciding and updating, is corrected by the execution itself.
- **Verified, never assumed.** A completed update is a success only if the live endpoint is
  InService on the requested model package: SageMaker rolls a blue/green deployment back when an
  alarm fires and leaves the endpoint InService on the old configuration, which is reported as a
  failed deployment, as are ``UPDATE_ROLLBACK_COMPLETE`` and every failed or stuck update.
- **The baseline travels with the version.** The update sets the model parameter and the monitoring
  baseline parameter together, the latter to the prefix the version's ``DriftCheckBaselines`` name
  (``DescribeModelPackage``), so the schedules always judge traffic by the served version's baseline,
  a rollback included. A version without one deploys with the parameter empty (no schedule), and
  the published outcome says monitoring is off.
- **Nothing but the stack changes the endpoint.** The functions call ``UpdateStack`` (previous
  template, every other parameter's previous value, the stack's CloudFormation service role) and
  read-only APIs; none calls SageMaker's endpoint-changing APIs, so the next stack update can never
  silently undo a deployment.
"""
