"""What the emulators share: the home folder, the project image as local processes, errors."""
