----------------------------- MODULE RingStamps -----------------------------
(***************************************************************************)
(* Slot stamps and the sequence arithmetic every ring protocol shares.     *)
(* Mirrors crates/ringcast-core/src/protocol/stamp.rs: a stamp is 0 for    *)
(* a slot never written, 2s+1 while message s is written into it,          *)
(* 2s+2 once message s is complete.                                        *)
(* A slot declared lost (its producer died between claim and commit)      *)
(* holds Lost(s): the complete stamp of s with the LOST flag (bit 63 in    *)
(* Rust, a bit above every stamp the models reach here).                   *)
(***************************************************************************)
EXTENDS Integers

CONSTANT Capacity              \* slots in the ring

ASSUME Capacity \in Nat \ {0}

Slots == 0 .. Capacity - 1

Empty == 0
Writing(s) == 2 * s + 1        \* stamp::writing
Complete(s) == 2 * s + 2       \* stamp::complete
LostFlag == 2 ^ 20             \* stamp::LOST_FLAG
Lost(s) == Complete(s) + LostFlag  \* stamp::lost
IsLost(st) == st >= LostFlag
Base(st) == st % LostFlag      \* the stamp without the LOST flag
IsWriting(st) == st % 2 = 1
SeqOf(st) == (Base(st) - 1) \div 2   \* the message a non-empty stamp is about
SlotOf(s) == s % Capacity

Min(a, b) == IF a < b THEN a ELSE b
Max(a, b) == IF a > b THEN a ELSE b

(* Payload word values: a word written by message s holds s. *)
NoData == -1

(* stamp::observe: a reader expecting message e looks at stamp st. *)
Observe(st, e) ==
    CASE st = Empty        -> "not_yet"
      [] st = Complete(e)  -> "ready"
      [] st = Lost(e)      -> "abandoned"
      [] SeqOf(st) <= e    -> "not_yet"
      [] OTHER             -> "lapped"

(* stamp::previous_lap: what the slot of s holds once the lap before s is  *)
(* done (empty on the first lap); a lap declared lost is done too.          *)
PreviousLap(s) == IF s < Capacity THEN Empty ELSE Complete(s - Capacity)
PreviousLapDone(st, s) == Base(st) = PreviousLap(s)

(* stamp::resync_after_lap: where a lapped reader at p continues, given    *)
(* cursor c: just past the oldest message that cannot be being            *)
(* overwritten, plus an eighth of the ring of headroom, never past c and   *)
(* always past p.                                                          *)
LapHeadroom == Capacity \div 8
ResyncAfterLap(p, c) ==
    Max(Min((IF c > Capacity THEN c - Capacity ELSE 0) + 1 + LapHeadroom, c), p + 1)

(* stamp::blocking_lap: whose write a slot showing st is stuck on, for a   *)
(* reader (or producer) waiting there for message e; NoLap when st does    *)
(* not keep a reader of e waiting.                                         *)
NoLap == -1
SameSlot(s, e) == s <= e /\ (e - s) % Capacity = 0
BlockingLap(st, e) ==
    CASE st = Empty                                         -> e % Capacity
      [] IsWriting(st) /\ SameSlot(SeqOf(st), e)            -> SeqOf(st)
      [] ~IsWriting(st) /\ SeqOf(st) < e /\ SameSlot(SeqOf(st), e)
                                                            -> SeqOf(st) + Capacity
      [] OTHER                                              -> NoLap

(* stamp::first_owned_lap: the first lap of the slot of stuck, from stuck  *)
(* to last, inside the claim f .. e - 1; NoLap if none.                     *)
FirstOwnedLap(stuck, last, f, e) ==
    LET laps == {l \in stuck .. last : (l - stuck) % Capacity = 0 /\ f <= l /\ l < e}
    IN IF laps = {} THEN NoLap ELSE CHOOSE l \in laps : \A m \in laps : l <= m

(* The laps of one slot from stuck to last. *)
LapsFrom(stuck, last) == {l \in stuck .. last : (l - stuck) % Capacity = 0}
=============================================================================
