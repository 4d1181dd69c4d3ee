"""What the emulators share: the home folder, the project image run as local processes in ``/opt/ml``
sandboxes, files written whole, the error base. Imports no service package."""
