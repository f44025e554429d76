// Lets the zx scripts import the typed lib/ modules directly, with no build step.
import { register } from "tsx/esm/api";

register();
