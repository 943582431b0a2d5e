/**
 * slow-body (real slowhttptest) against `prodserver serve --workers 2`: the connection limit is per
 * worker, and a normal client keeps getting answers (≥ 95% within 2 s) while attackers hold every
 * worker's limit full, with the default limit and with a small one.
 */
import t from 'tap'
import { clusterAttackTests } from './helpers/attack-scenario'

clusterAttackTests(t, 'slow-body')
