/** Random container names in docker's style: adjective_surname (of scientists and engineers). */
import crypto from 'node:crypto';

const LEFT = [
  'admiring', 'adoring', 'affectionate', 'amazing', 'awesome', 'blissful', 'bold', 'brave', 'charming', 'clever',
  'compassionate', 'competent', 'confident', 'cool', 'dazzling', 'determined', 'eager', 'ecstatic', 'elegant',
  'epic', 'exciting', 'fervent', 'focused', 'friendly', 'funny', 'gallant', 'gifted', 'happy', 'hopeful',
  'inspiring', 'intelligent', 'jolly', 'keen', 'kind', 'laughing', 'loving', 'lucid', 'magical', 'modest',
  'nice', 'nifty', 'nostalgic', 'objective', 'optimistic', 'peaceful', 'pensive', 'practical', 'quirky',
  'relaxed', 'serene', 'sharp', 'stoic', 'sweet', 'tender', 'trusting', 'upbeat', 'vibrant', 'wizardly', 'youthful', 'zealous',
];
const RIGHT = [
  'agnesi', 'albattani', 'archimedes', 'babbage', 'bardeen', 'bell', 'bhabha', 'bohr', 'booth', 'brattain',
  'curie', 'darwin', 'dijkstra', 'einstein', 'euclid', 'euler', 'faraday', 'fermat', 'feynman', 'franklin',
  'galileo', 'gauss', 'goldberg', 'hamilton', 'hawking', 'heisenberg', 'hopper', 'hypatia', 'johnson',
  'kepler', 'knuth', 'lamport', 'leakey', 'lovelace', 'mayer', 'mccarthy', 'meitner', 'newton', 'noether',
  'pascal', 'pasteur', 'perlman', 'poincare', 'ritchie', 'shannon', 'shockley', 'sinoussi', 'thompson',
  'torvalds', 'turing', 'wiles', 'williams', 'wozniak', 'wright', 'yalow', 'yonath',
];

export function randomName(): string {
  const a = LEFT[crypto.randomInt(LEFT.length)]!;
  const b = RIGHT[crypto.randomInt(RIGHT.length)]!;
  return `${a}_${b}`;
}

/** 64 hex digits, like docker's container ids. */
export function newContainerId(): string {
  return crypto.randomBytes(32).toString('hex');
}
