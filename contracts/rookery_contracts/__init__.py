"""What rookery's shipped artifacts (image, Lambdas) share with the platform; standard library only."""
